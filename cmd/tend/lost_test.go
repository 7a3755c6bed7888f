package main

import (
	"strconv"
	"syscall"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

// cmdWaitProcs is the script command wait-procs SUBSTRING N: it waits up to
// 30 s until exactly N live processes of the script (as procs counts them)
// have SUBSTRING in their command line.
func cmdWaitProcs(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: wait-procs SUBSTRING N")
	}
	want, err := strconv.Atoi(args[1])
	ts.Check(err)
	got := 0
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if got = countProcs(args[0], ts.Getenv("WORK")); got == want {
			return
		}
	}
	ts.Fatalf("%d processes match %q after 30s, want %d", got, args[0], want)
}

// cmdTermProcs is the script command term-procs SUBSTRING: it sends
// SIGTERM to every process of the script that procs would count, as a
// person stopping replicas by hand would, and waits up to 15 s until they
// are gone.
func cmdTermProcs(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: term-procs SUBSTRING")
	}
	if !termProcs(args[0], ts.Getenv("WORK"), 15*time.Second) {
		ts.Fatalf("processes matching %q still run 15s after SIGTERM", args[0])
	}
}

// termProcs sends SIGTERM to the processes findProcs lists and reports
// whether they are gone within d.
func termProcs(sub, dir string, d time.Duration) bool {
	for _, pid := range findProcs(sub, dir) {
		_ = syscall.Kill(pid, syscall.SIGTERM)
	}
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if countProcs(sub, dir) == 0 {
			return true
		}
	}
	return false
}
