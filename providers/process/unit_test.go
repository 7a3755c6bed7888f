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
	"github.com/tendhq/tend/spec"
)

func TestRotationAndTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "stdout.log")
	r, err := openRotating(path, 100)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 12 {
		fmt.Fprintf(r, "line %02d ......\n", i) // 16 bytes
	}
	r.Close()
	cur, _ := os.ReadFile(path)
	prev, _ := os.ReadFile(path + ".1")
	if len(cur) > 100 || len(prev) > 100 || len(prev) == 0 {
		t.Fatalf("sizes: current %d, rotated %d", len(cur), len(prev))
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
