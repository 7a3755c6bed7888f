package reconcile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLoopReusesUnchangedFiles: the daemon's passes load a new revision
// with the servers of the files that did not change taken from the last
// load (the same values, not decoded again), and the change is applied.
func TestLoopReusesUnchangedFiles(t *testing.T) {
	h := newLoopHarness(t)
	h.waitPasses(1)
	main := strings.SplitN(strings.ReplaceAll(loopRepo, "%SELFHEAL%", "false"), `server "worker"`, 2)
	write := func(name, src string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(h.dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("worker.hcl", `server "worker"`+main[1])
	write("main.hcl", strings.ReplaceAll(main[0], "%VERSION%", "1.0.0"))
	if st := h.pass(); st.LastResult != PassNoChange {
		t.Fatalf("the same servers in two files: %+v", st)
	}
	worker := h.loop.LastGood().Config.Servers["worker"]

	write("main.hcl", strings.ReplaceAll(main[0], "%VERSION%", "1.1.0"))
	if st := h.pass(); st.LastResult != PassApplied || strings.Join(h.versions("api"), ",") != "1.1.0,1.1.0" {
		t.Fatalf("after a change of main.hcl: %+v, %v", st, h.versions("api"))
	}
	cfg := h.loop.LastGood().Config
	if cfg.Servers["worker"] != worker {
		t.Errorf("worker.hcl did not change, but its server was decoded again")
	}
	if cfg.Servers["api"].Version != "1.1.0" {
		t.Errorf("api is at %s in the new revision", cfg.Servers["api"].Version)
	}

	write("worker.hcl", strings.Replace(`server "worker"`+main[1], `version = "1.0.0"`, `version = "1.0.1"`, 1))
	if st := h.pass(); st.LastResult != PassApplied || strings.Join(h.versions("worker"), ",") != "1.0.1" {
		t.Fatalf("after a change of worker.hcl: %+v, %v", st, h.versions("worker"))
	}
	if w := h.loop.LastGood().Config.Servers["worker"]; w == worker || w.Version != "1.0.1" {
		t.Errorf("worker.hcl changed, but its server did not: %+v", w)
	}
}
