package reconcile

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
)

const vetRepo = `tend {
  block_vulnerable = %BLOCK%
  advisories {
    source = "%ADVISORIES%"
  }
}

provider "process" "mem" {}

server "api" {
  version = "%VERSION%"
  command = ["./api"]
  port    = 8000
  release {
    package = "pkg:golang/example.com/api"
  }
  rollout {
    verify_for        = "0s"
    progress_deadline = "2s"
  }
}
`

const vetAdvisory = `{"id": "TEND-2026-0007", "aliases": ["CVE-2026-7777"], "summary": "api runs any query",
 "affected": [{"package": {"ecosystem": "Go", "name": "example.com/api"},
   "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "1.0.1"}]}]}]}`

// TestLoopRefusesVulnerableRelease: tend run plans through the same path
// as tend plan, so block_vulnerable holds a vulnerable release back (the
// pass fails, saying why, and nothing starts) until a fixed version is
// desired; without block_vulnerable the release goes, with a warning.
func TestLoopRefusesVulnerableRelease(t *testing.T) {
	h := &loopHarness{harness: newHarness(t), logs: &syncBuffer{}}
	adv := t.TempDir()
	if err := os.WriteFile(filepath.Join(adv, "TEND-2026-0007.json"), []byte(vetAdvisory), 0o644); err != nil {
		t.Fatal(err)
	}
	write := func(version string, block bool) {
		src := strings.NewReplacer("%VERSION%", version, "%ADVISORIES%", adv, "%BLOCK%", map[bool]string{true: "true", false: "false"}[block]).Replace(vetRepo)
		if err := os.WriteFile(filepath.Join(h.dir, "main.hcl"), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("1.0.0", true)
	log := logrus.New()
	log.SetOutput(h.logs)
	h.eng.Log = log
	h.loop = &Loop{Engine: h.eng, Fetcher: &DirFetcher{Dir: h.dir}, Log: log, Poll: time.Hour}
	ctx, cancel := context.WithCancel(context.Background())
	h.done = make(chan struct{})
	go func() { defer close(h.done); _ = h.loop.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-h.done })

	if st := h.waitPasses(1); st.LastResult != PassFailed {
		t.Fatalf("a vulnerable release with block_vulnerable: %+v; want the pass failed", st)
	}
	if v := h.versions("api"); len(v) != 0 {
		t.Fatalf("api runs %v; the vulnerable release must not start", v)
	}
	for _, want := range []string{"planning failed", "Vulnerable version refused", "TEND-2026-0007", "Fixed in 1.0.1"} {
		if !strings.Contains(h.logs.String(), want) {
			t.Errorf("the daemon's log does not say %q:\n%s", want, h.logs.String())
		}
	}
	write("1.0.1", true)
	if st := h.pass(); st.LastResult != PassApplied || strings.Join(h.versions("api"), ",") != "1.0.1" {
		t.Fatalf("the fixed release: %+v, api at %v", st, h.versions("api"))
	}
	write("1.0.0", false)
	if st := h.pass(); st.LastResult != PassApplied || strings.Join(h.versions("api"), ",") != "1.0.0" {
		t.Fatalf("without block_vulnerable: %+v, api at %v", st, h.versions("api"))
	}
	if !strings.Contains(h.logs.String(), "the plan deploys a release with a warning") {
		t.Errorf("no warning logged for the vulnerable release:\n%s", h.logs.String())
	}
}
