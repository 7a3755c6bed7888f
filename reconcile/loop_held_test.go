package reconcile

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
)

// heldMetrics records what the loop reports of holds.
type heldMetrics struct {
	mu   sync.Mutex
	held map[string]bool
}

func (m *heldMetrics) SetServer(name string, _, _, _, held bool) { m.SetHeld(name, held) }

func (m *heldMetrics) SetHeld(name string, held bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.held[name] = held
}

func (m *heldMetrics) isHeld(name string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.held[name]
}

func (m *heldMetrics) ObservePass(string, time.Duration)  {}
func (m *heldMetrics) ObserveFetch(time.Duration, error)  {}
func (m *heldMetrics) ForgetServer(string)                {}
func (m *heldMetrics) IncRollback(string)                 {}
func (m *heldMetrics) ObserveApply(string, time.Duration) {}
func (m *heldMetrics) SetLastSuccess(time.Time)           {}

// TestLoopReportsHeldInThePassThatHeldIt: tend_server_held is 1 as soon as
// the pass that rolled the change back ends, not one pass later, and 0 again
// in the pass that verifies a new desired state.
func TestLoopReportsHeldInThePassThatHeldIt(t *testing.T) {
	h := &loopHarness{harness: newHarness(t), logs: &syncBuffer{}}
	h.write("1.0.0", false)
	log := logrus.New()
	log.SetOutput(h.logs)
	h.eng.Log = log
	m := &heldMetrics{held: map[string]bool{}}
	h.loop = &Loop{Engine: h.eng, Fetcher: &DirFetcher{Dir: h.dir}, Log: log, Poll: time.Hour, Metrics: m}
	ctx, cancel := context.WithCancel(context.Background())
	h.done = make(chan struct{})
	go func() { defer close(h.done); _ = h.loop.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-h.done })

	h.waitPasses(1)
	if m.isHeld("api") {
		t.Fatal("api is held after its first, verified apply")
	}
	h.mem.FailVersion["api@2.0.0"] = true
	h.write("2.0.0", false)
	if st := h.pass(); st.LastResult != PassFailed {
		t.Fatalf("bad revision: %+v; want failed", st)
	}
	if !m.isHeld("api") {
		t.Error("tend_server_held of api is 0 after the pass that rolled 2.0.0 back and held it")
	}
	if m.isHeld("worker") {
		t.Error("worker is reported held; only api failed")
	}
	h.write("2.0.1", false)
	if st := h.pass(); st.LastResult == PassFailed {
		t.Fatalf("good revision: %+v; want it applied", st)
	}
	if m.isHeld("api") {
		t.Error("tend_server_held of api is still 1 after 2.0.1 was verified")
	}
}

// TestLoopPassThatWaits: a revision whose changes wait (here in a deny
// window) ends its pass "waiting", not "no-change", and is not reported as
// the revision the fleet runs.
func TestLoopPassThatWaits(t *testing.T) {
	h := newLoopHarness(t)
	h.waitPasses(1)
	good := h.loop.Status().Applied
	if good == "" {
		t.Fatal("the first revision is not applied")
	}
	h.write("2.0.0", false)
	freeze := "\nwindow \"freeze\" {\n  schedule = \"* * * * *\"\n  duration = \"2m\"\n}\n"
	f, err := os.OpenFile(filepath.Join(h.dir, "main.hcl"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(freeze); err != nil {
		t.Fatal(err)
	}
	f.Close()
	st := h.pass()
	if st.LastResult != PassWaiting || st.Applied != good || st.Revision == good {
		t.Fatalf("a pass whose changes wait: %+v; want result %q, applied still %s", st, PassWaiting, good)
	}
}
