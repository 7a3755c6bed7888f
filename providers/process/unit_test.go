package process

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tendhq/tend/providers"
	"github.com/tendhq/tend/providers/process/supervisor"
	"github.com/tendhq/tend/spec"
)

// The tail of a log reads on into the rotated part (as the supervisor
// rotates it: lines 00-05 in .1, 06-11 in the current file).
func TestTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "stdout.log")
	var prev, cur strings.Builder
	for i := range 12 {
		w := &cur
		if i < 6 {
			w = &prev
		}
		fmt.Fprintf(w, "line %02d ......\n", i)
	}
	if err := os.WriteFile(path+".1", []byte(prev.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(cur.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := tailLog(path, 8)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(got), "\n"), "\n")
	if len(lines) != 8 || lines[0] != "line 04 ......" || lines[7] != "line 11 ......" {
		t.Errorf("tail 8: %q", lines)
	}
	if got, _ := tailLog(path, 2); string(got) != "line 10 ......\nline 11 ......\n" {
		t.Errorf("tail 2: %q", got)
	}
	if got, _ := tailFile(filepath.Join(t.TempDir(), "none"), 5); got != nil {
		t.Errorf("tail of a missing file: %q", got)
	}
	if got := lastLines([]byte("a\nb\nc"), 2); string(got) != "b\nc" {
		t.Errorf("lastLines without final newline: %q", got)
	}
}

func TestResolveProgram(t *testing.T) {
	wd, _ := os.Getwd()
	if got, _ := resolveProgram("./bin/x", ""); got != filepath.Join(wd, "bin/x") {
		t.Errorf("relative path: %s", got)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "prog"), []byte("#!/bin/sh\n"), 0o755)
	os.WriteFile(filepath.Join(dir, "data"), []byte("x"), 0o644)
	if got, err := resolveProgram("prog", "/nonexistent:"+dir); err != nil || got != filepath.Join(dir, "prog") {
		t.Errorf("PATH lookup: %s %v", got, err)
	}
	if _, err := resolveProgram("data", dir); err == nil {
		t.Error("a file that is not executable was found")
	}
}

// A child that ignores SIGTERM is killed after the grace.
func TestStopKillsStubbornChild(t *testing.T) {
	t.Parallel()
	p := newTestProvider(t, tempRoot(t))
	port := freePorts(t, 1)
	d := testDesired(t, "stubborn", port, "h1", map[string]spec.Value{"IGNORE_TERM": spec.Plain("1")})
	inst := startTest(t, p, d, 0)
	eventually(t, 5*time.Second, func() error { _, err := httpGet(port, "/health"); return err })
	st := statusOf(t, p, "stubborn", 0)
	t0 := time.Now()
	if res := p.StopReplica(context.Background(), providers.StopRequest{Instance: inst, Grace: 500 * time.Millisecond}); res.Err != nil {
		t.Fatal(res.Err)
	}
	if el := time.Since(t0); el < 400*time.Millisecond || el > 4*time.Second {
		t.Errorf("stop took %v, want about the grace", el)
	}
	if !pidGone(st.ChildPID) || !pidGone(st.SupervisorPID) {
		t.Error("processes left after stop")
	}
}

// Supervisors run tend-supervise when it lies beside the executable (an
// executable file), and the executable itself otherwise.
func TestSupervisorProgram(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "tend")
	prog := filepath.Join(dir, supervisor.Program)
	if got := supervisorProgram(exe); got != exe {
		t.Errorf("without %s: %s, want %s", supervisor.Program, got, exe)
	}
	if err := os.WriteFile(prog, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := supervisorProgram(exe); got != exe {
		t.Errorf("with %s not executable: %s, want %s", supervisor.Program, got, exe)
	}
	if err := os.Chmod(prog, 0o755); err != nil {
		t.Fatal(err)
	}
	if got := supervisorProgram(exe); got != prog {
		t.Errorf("with %s: %s, want it", supervisor.Program, got)
	}
	if err := os.Remove(prog); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(prog, 0o755); err != nil {
		t.Fatal(err)
	}
	if got := supervisorProgram(exe); got != exe {
		t.Errorf("with a directory %s: %s, want %s", supervisor.Program, got, exe)
	}
}
