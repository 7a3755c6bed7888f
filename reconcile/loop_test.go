package reconcile

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/tendhq/tend/providers"
)

const loopRepo = `
tend {
  self_heal = %SELFHEAL%
}

provider "process" "mem" {}

server "api" {
  version  = "%VERSION%"
  command  = ["./api"]
  replicas = 2
  port     = 8000
  rollout {
    verify_for        = "0s"
    progress_deadline = "2s"
  }
}

server "worker" {
  version = "1.0.0"
  command = ["./worker"]
  port    = 8100
  rollout {
    verify_for        = "0s"
    progress_deadline = "2s"
  }
}
`

type loopHarness struct {
	*harness
	loop   *Loop
	logs   *syncBuffer
	cancel context.CancelFunc
	done   chan struct{}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (h *loopHarness) write(version string, selfHeal bool) {
	h.t.Helper()
	src := strings.ReplaceAll(loopRepo, "%VERSION%", version)
	src = strings.ReplaceAll(src, "%SELFHEAL%", map[bool]string{true: "true", false: "false"}[selfHeal])
	if err := os.WriteFile(filepath.Join(h.dir, "main.hcl"), []byte(src), 0o644); err != nil {
		h.t.Fatal(err)
	}
}

func newLoopHarness(t *testing.T) *loopHarness {
	h := &loopHarness{harness: newHarness(t), logs: &syncBuffer{}}
	h.write("1.0.0", false)
	log := logrus.New()
	log.SetOutput(h.logs)
	log.SetLevel(logrus.InfoLevel)
	h.eng.Log = log
	h.loop = &Loop{Engine: h.eng, Fetcher: &DirFetcher{Dir: h.dir}, Log: log, Poll: time.Hour}
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	h.done = make(chan struct{})
	go func() { defer close(h.done); _ = h.loop.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-h.done })
	return h
}

// pass triggers one pass and waits for it.
func (h *loopHarness) pass() LoopStatus {
	h.t.Helper()
	before := h.loop.Status().Passes
	h.loop.Trigger("test")
	return h.waitPasses(before + 1)
}

func (h *loopHarness) waitPasses(n int) LoopStatus {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if st := h.loop.Status(); st.Passes >= n {
			return st
		}
		time.Sleep(5 * time.Millisecond)
	}
	h.t.Fatalf("pass %d did not happen", n)
	return LoopStatus{}
}

func (h *loopHarness) versions(server string) []string {
	var out []string
	for _, in := range h.mem.Observe(context.Background(), providers.ObserveRequest{ManagedBy: "test", Server: server}).Instances {
		out = append(out, in.Version)
	}
	return out
}

func TestLoopConverges(t *testing.T) {
	h := newLoopHarness(t)
	st := h.waitPasses(1)
	if !st.Ready || st.LastResult != PassApplied {
		t.Fatalf("first pass: %+v", st)
	}
	if st := h.pass(); st.LastResult != PassNoChange {
		t.Fatalf("idle pass: %+v", st)
	}
	h.write("1.1.0", false)
	if st := h.pass(); st.LastResult != PassApplied || strings.Join(h.versions("api"), ",") != "1.1.0,1.1.0" {
		t.Fatalf("after a change: %+v, %v", st, h.versions("api"))
	}
}

func TestLoopStallsOnBrokenConfigWithoutSpinning(t *testing.T) {
	h := newLoopHarness(t)
	h.waitPasses(1)
	if err := os.WriteFile(filepath.Join(h.dir, "main.hcl"), []byte("server \"api\" {\n  version = \"1.2\"\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	st := h.pass()
	if st.LastResult != PassStalled || !strings.Contains(st.Stalled, "main.hcl line 2") || !strings.Contains(st.Stalled, "not a full version") {
		t.Fatalf("stalled status: %+v", st)
	}
	// Further passes on the same revision stay stalled, quietly, and leave
	// the fleet as the last good revision has it.
	for i := 0; i < 5; i++ {
		h.pass()
	}
	if n := strings.Count(h.logs.String(), "the desired state does not load"); n != 1 {
		t.Errorf("the stall was logged %d times, want once", n)
	}
	if strings.Join(h.versions("api"), ",") != "1.0.0,1.0.0" {
		t.Errorf("the fleet changed while stalled: %v", h.versions("api"))
	}
	// A fix is picked up.
	h.write("1.0.1", false)
	if st := h.pass(); st.LastResult != PassApplied || st.Stalled != "" {
		t.Fatalf("after the fix: %+v", st)
	}
}

func TestLoopHoldsABadRevision(t *testing.T) {
	h := newLoopHarness(t)
	h.waitPasses(1)
	good := h.loop.Status().Applied
	h.mem.FailVersion["api@2.0.0"] = true
	h.write("2.0.0", false)
	if st := h.pass(); st.LastResult != PassFailed || st.Applied != good {
		t.Fatalf("bad revision: %+v; want failed, applied_revision still %s", st, good)
	}
	starts := h.mem.Starts
	for i := 0; i < 5; i++ {
		// The held revision is neither applied nor "no change".
		if st := h.pass(); st.LastResult != PassHeld || st.Applied != good || st.Revision == good {
			t.Fatalf("pass over a held revision: %+v; want held, applied_revision %s", st, good)
		}
	}
	if h.mem.Starts != starts {
		t.Fatalf("a held revision was re-applied: %d more starts", h.mem.Starts-starts)
	}
	if strings.Join(h.versions("api"), ",") != "1.0.0,1.0.0" {
		t.Errorf("after the rollback: %v", h.versions("api"))
	}
}

func TestLoopDriftAndSelfHeal(t *testing.T) {
	h := newLoopHarness(t)
	h.waitPasses(1)
	h.mem.Crash("worker", 0, 137)
	st := h.pass()
	if len(st.Drift) != 1 || !strings.Contains(st.Drift[0], "worker: replica 0 exited (exit code 137)") {
		t.Fatalf("drift: %+v", st.Drift)
	}
	if got := h.mem.Observe(context.Background(), providers.ObserveRequest{ManagedBy: "test", Server: "worker"}).Instances[0].State; got != providers.StateExited {
		t.Fatalf("drift was healed with self_heal off: %s", got)
	}
	h.write("1.0.0", true)
	st = h.pass()
	if len(st.Drift) != 0 {
		t.Fatalf("drift after self-heal: %+v", st.Drift)
	}
	if got := h.mem.Observe(context.Background(), providers.ObserveRequest{ManagedBy: "test", Server: "worker"}).Instances[0].State; got != providers.StateRunning {
		t.Fatalf("self_heal did not heal: %s", got)
	}
}

func TestLoopRefusesToWipeTheFleet(t *testing.T) {
	h := newLoopHarness(t)
	h.waitPasses(1)
	if err := os.WriteFile(filepath.Join(h.dir, "main.hcl"), []byte("provider \"process\" \"mem\" {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	good := h.loop.Status().Applied
	events := &recordedEvents{}
	h.loop.Notify = events // read by the loop after the trigger below
	st := h.pass()
	if !strings.Contains(st.PruneRefused, "would delete every server (2)") || st.LastResult != PassHeld || st.Applied != good {
		t.Fatalf("prune guard: %+v", st)
	}
	h.pass()
	if held := events.of("held"); len(held) != 1 || !strings.Contains(held[0], "would delete every server (2)") {
		t.Fatalf("held events for a refused delete-all: %q; want one", held)
	}
	if len(h.mem.Servers()) != 2 {
		t.Fatalf("servers were deleted: %v", h.mem.Servers())
	}
	h.eng.AllowPrune = true
	h.pass()
	if len(h.mem.Servers()) != 0 {
		t.Fatalf("--allow-prune did not prune: %v", h.mem.Servers())
	}
}

func TestLoopKeepsLastGoodWhenSourceFails(t *testing.T) {
	h := newLoopHarness(t)
	h.waitPasses(1)
	moved := h.dir + ".away"
	if err := os.Rename(h.dir, moved); err != nil {
		t.Fatal(err)
	}
	h.mem.Crash("api", 1, 1)
	st := h.pass()
	if st.FetchError == "" || st.LastResult != PassFetchError || !st.Ready {
		t.Fatalf("fetch error: %+v", st)
	}
	// The pass still watched the fleet, against the last good revision.
	if len(st.Drift) != 1 || !strings.Contains(st.Drift[0], "api: replica 1 exited") {
		t.Fatalf("drift while the source is away: %+v", st.Drift)
	}
	if err := os.Rename(moved, h.dir); err != nil {
		t.Fatal(err)
	}
	if st := h.pass(); st.FetchError != "" || st.LastResult == PassFetchError {
		t.Fatalf("recovery: %+v", st)
	}
}

func TestLoopCoalescesTriggers(t *testing.T) {
	h := newLoopHarness(t)
	h.waitPasses(1)
	before := h.loop.Status().Passes
	for i := 0; i < 50; i++ {
		h.loop.Trigger("burst")
	}
	time.Sleep(300 * time.Millisecond)
	// Triggers that arrive during a pass are one pending pass: a burst
	// makes a pass, plus one for each pass that ends while the burst is
	// still being sent (one or two on an idle machine; a few on a loaded
	// one), never one each.
	if got := h.loop.Status().Passes - before; got < 1 || got > 5 {
		t.Fatalf("50 triggers caused %d passes, want 1 to 5", got)
	}
}

func TestLoopNewerRevisionSupersedesVerification(t *testing.T) {
	h := newLoopHarness(t)
	h.waitPasses(1)
	// 1.1.0 verifies for 5 seconds; 1.2.0 arrives while it does.
	slow := strings.ReplaceAll(loopRepo, "%SELFHEAL%", "false")
	slow = strings.Replace(strings.ReplaceAll(slow, "%VERSION%", "1.1.0"), `verify_for        = "0s"
    progress_deadline = "2s"`, `verify_for        = "5s"
    progress_deadline = "10s"`, 1)
	if err := os.WriteFile(filepath.Join(h.dir, "main.hcl"), []byte(slow), 0o644); err != nil {
		t.Fatal(err)
	}
	before := h.loop.Status().Passes
	h.loop.Trigger("push 1.1.0")
	time.Sleep(500 * time.Millisecond) // 1.1.0 is being verified
	start := time.Now()
	h.write("1.2.0", false)
	h.loop.Trigger("push 1.2.0")
	h.waitPasses(before + 2)
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("the newer revision waited %s for the older one's verification", d)
	}
	if got := strings.Join(h.versions("api"), ","); got != "1.2.0,1.2.0" {
		t.Fatalf("after the newer revision: %s", got)
	}
	// The superseded revision is recorded as interrupted, and not held.
	hist, _ := h.eng.Store.History("api", 0)
	var sawInterrupted bool
	for _, r := range hist {
		if r.Version == "1.1.0" && r.Outcome == "interrupted" {
			sawInterrupted = true
		}
	}
	holds, _ := h.eng.Store.Holds()
	if !sawInterrupted || len(holds["api"]) != 0 {
		t.Fatalf("history %+v, holds %+v", hist, holds["api"])
	}
}

func TestLoopShutdownFinishesTheStepInFlight(t *testing.T) {
	h := newHarness(t)
	src := `
provider "process" "mem" {}
server "db" {
  version = "1.0.0"
  command = ["./db"]
  port    = 5432
  rollout {
    verify_for        = "1s"
    progress_deadline = "5s"
  }
}
server "api" {
  version    = "1.0.0"
  command    = ["./api"]
  port       = 8000
  depends_on = [server.db]
  rollout {
    verify_for        = "0s"
    progress_deadline = "5s"
  }
}
`
	if err := os.WriteFile(filepath.Join(h.dir, "main.hcl"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	loop := &Loop{Engine: h.eng, Fetcher: &DirFetcher{Dir: h.dir}, Poll: time.Hour, Log: discardLog}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = loop.Run(ctx) }()
	time.Sleep(300 * time.Millisecond) // db is being verified
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after shutdown")
	}
	hist, _ := h.eng.Store.History("", 0)
	if len(hist) != 1 || hist[0].Server != "db" || hist[0].Outcome != "verified" {
		t.Fatalf("history after shutdown: %+v", hist)
	}
	if got := h.mem.Servers(); strings.Join(got, ",") != "db" {
		t.Fatalf("servers after shutdown: %v (api must not start)", got)
	}
}

type recordedEvents struct {
	mu     sync.Mutex
	events []string
}

func (r *recordedEvents) Send(kind, server, version, revision, message string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, kind+" "+server+" "+version+": "+message)
}

func (r *recordedEvents) of(kind string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.events {
		if strings.HasPrefix(e, kind+" ") {
			out = append(out, e)
		}
	}
	return out
}

// TestLoopWaitsForAWindow: an upgrade behind an open deny window waits,
// once notified ("waiting"), not on every pass; it goes when the window no
// longer covers it.
func TestLoopWaitsForAWindow(t *testing.T) {
	h := &loopHarness{harness: newHarness(t), logs: &syncBuffer{}}
	h.write("1.0.0", false)
	log := logrus.New()
	log.SetOutput(h.logs)
	h.eng.Log = log
	events := &recordedEvents{}
	h.loop = &Loop{Engine: h.eng, Fetcher: &DirFetcher{Dir: h.dir}, Log: log, Poll: time.Hour, Notify: events}
	ctx, cancel := context.WithCancel(context.Background())
	h.done = make(chan struct{})
	go func() { defer close(h.done); _ = h.loop.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-h.done })
	h.waitPasses(1)

	freeze := "\nwindow \"freeze\" {\n  schedule = \"* * * * *\"\n  duration = \"2m\"\n  servers  = [server.api]\n}\n"
	write := func(version string, withFreeze bool) {
		h.write(version, false)
		if withFreeze {
			f, err := os.OpenFile(filepath.Join(h.dir, "main.hcl"), os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.WriteString(freeze); err != nil {
				t.Fatal(err)
			}
		}
	}
	write("2.0.0", true)
	for range 3 {
		h.pass()
	}
	if v := strings.Join(h.versions("api"), ","); v != "1.0.0,1.0.0" {
		t.Fatalf("api runs %s during the freeze", v)
	}
	if w := events.of("waiting"); len(w) != 1 || !strings.Contains(w[0], `waiting api 2.0.0: update, waiting: the deny window "freeze" is open`) {
		t.Errorf("waiting events: %q; want one", w)
	}
	write("2.0.0", false)
	h.pass()
	if v := strings.Join(h.versions("api"), ","); v != "2.0.0,2.0.0" {
		t.Errorf("api runs %s after the freeze left", v)
	}
	if a := events.of("apply"); len(a) == 0 {
		t.Errorf("no apply event after the freeze: %q", events.events)
	}
}
