package reconcile

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/tendhq/tend/providers"
	"github.com/tendhq/tend/reconcile/state"
)

// scaled is a repository of one autoscaled server on the in-memory provider.
const scaledFleet = `
provider "process" "mem" {}

variable "version" {
  default = "1.0.0"
}

variable "max" {
  default = 4
}

server "web" {
  version = var.version
  command = ["./web"]
  port    = 8000
  scaling {
    min               = 1
    max               = var.max
    cpu_percent       = 50
    scale_down_window = "0s"
  }
  rollout {
    verify_for        = "0s"
    progress_deadline = "2s"
  }
}
`

func newScaleHarness(t *testing.T) (*harness, *Autoscaler) {
	t.Helper()
	h := newHarness(t)
	if err := os.WriteFile(filepath.Join(h.dir, "main.hcl"), []byte(scaledFleet), 0o644); err != nil {
		t.Fatal(err)
	}
	return h, &Autoscaler{Engine: h.eng, ReadyAfter: time.Nanosecond}
}

// running returns the replica indexes of server that run, sorted.
func (h *harness) running(server string) []int {
	h.t.Helper()
	var out []int
	for _, in := range h.mem.Observe(context.Background(), providers.ObserveRequest{ManagedBy: "test"}).Instances {
		if in.Server == server && in.State == providers.StateRunning {
			out = append(out, in.Replica)
		}
	}
	return sortedInts(out)
}

func (h *harness) setCPU(server string, pct float64, replicas ...int) {
	for _, r := range replicas {
		h.mem.SetStats(server, r, providers.Stats{CPUPercent: pct})
	}
}

// evaluate runs one autoscaler pass and returns the decision for server.
func evaluate(t *testing.T, a *Autoscaler, src *Source, server string) ScaleStatus {
	t.Helper()
	sts, err := a.Evaluate(context.Background(), src)
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range sts {
		if st.Server == server {
			return st
		}
	}
	t.Fatalf("no decision for %s in %+v", server, sts)
	return ScaleStatus{}
}

func TestAutoscaleUpDownAndReset(t *testing.T) {
	h, a := newScaleHarness(t)
	ctx := context.Background()
	if _, res := h.apply(); outcome(res, "web") != ResultVerified {
		t.Fatalf("first apply: %+v", res.Servers)
	}
	if got := h.running("web"); len(got) != 1 {
		t.Fatalf("replicas after create: %v, want 1 (min)", got)
	}

	// 150% of a 50% target on one replica wants 3; at most double per step: 2.
	h.setCPU("web", 150, 0)
	st := evaluate(t, a, h.source(), "web")
	if d := st.Decision; d.Current != 1 || d.Proposal != 3 || d.Desired != 2 {
		t.Fatalf("decision: %+v", d)
	}
	res, err := a.Scale(ctx, h.source(), st)
	if err != nil || res.Outcome != state.ScaleApplied || res.RevisionID == 0 {
		t.Fatalf("scale up: %+v, %v", res, err)
	}
	if got := h.running("web"); len(got) != 2 {
		t.Fatalf("replicas after scale-up: %v, want 2", got)
	}
	hist, _ := h.eng.Store.History("web", 1)
	if hist[0].Trigger != TriggerAutoscale || hist[0].Outcome != state.OutcomeVerified {
		t.Fatalf("the scale's revision: %+v", hist[0])
	}
	decs, _ := h.eng.Store.ScaleDecisions("web", 0)
	if len(decs) != 1 || decs[0].FromReplicas != 1 || decs[0].ToReplicas != 2 || decs[0].Outcome != state.ScaleApplied ||
		!strings.Contains(decs[0].Reason, "cpu") || !strings.Contains(string(decs[0].Inputs), `"samples"`) {
		t.Fatalf("recorded decisions: %+v", decs)
	}

	// The autoscaled count is not drift: the next plan changes nothing.
	if p := h.plan(); p.HasChanges() {
		t.Fatalf("the plan after a scale has changes: %+v", p.Change("web"))
	}
	// A new version rolls both replicas and keeps the count.
	h.vars["version"] = "1.1.0"
	p := h.plan()
	if c := p.Change("web"); c.Action != ActionUpdate || len(c.Start) != 2 || c.ToReplicas != 2 {
		t.Fatalf("upgrade plan: %+v", c)
	}
	if _, res := h.apply(); outcome(res, "web") != ResultVerified {
		t.Fatalf("upgrade: %+v", res.Servers)
	}
	if got := h.running("web"); len(got) != 2 {
		t.Fatalf("replicas after the upgrade: %v, want 2", got)
	}

	// Idle: 10% of 50% on two replicas wants 1 (the window is 0s).
	h.setCPU("web", 10, 0, 1)
	st = evaluate(t, a, h.source(), "web")
	if st.Decision.Desired != 1 {
		t.Fatalf("idle decision: %+v", st.Decision)
	}
	if res, err := a.Scale(ctx, h.source(), st); err != nil || res.Outcome != state.ScaleApplied {
		t.Fatalf("scale down: %+v, %v", res, err)
	}
	if got := h.running("web"); len(got) != 1 || got[0] != 0 {
		t.Fatalf("replicas after scale-down: %v, want [0] (the highest index goes first)", got)
	}

	// A decision made for a count that changed since is dropped.
	if _, err := a.Scale(ctx, h.source(), st); err == nil {
		t.Fatal("a stale decision was applied")
	}

	// Changing max resets the count to the declared replicas.
	h.setCPU("web", 150, 0)
	st = evaluate(t, a, h.source(), "web")
	if _, err := a.Scale(ctx, h.source(), st); err != nil {
		t.Fatal(err)
	}
	if got := h.running("web"); len(got) != 2 {
		t.Fatalf("replicas: %v, want 2", got)
	}
	h.vars["max"] = "6"
	if _, err := a.Evaluate(ctx, h.source()); err != nil {
		t.Fatal(err)
	}
	if ts, _ := h.eng.Store.ScaleTargets(); len(ts) != 0 {
		t.Fatalf("targets after max changed: %+v", ts)
	}
	p = h.plan()
	if c := p.Change("web"); c.Action != ActionScale || c.ToReplicas != 1 {
		t.Fatalf("plan after max changed: %+v", c)
	}
}

func TestAutoscaleFailingScaleUpIsHeld(t *testing.T) {
	h, a := newScaleHarness(t)
	ctx := context.Background()
	if _, res := h.apply(); outcome(res, "web") != ResultVerified {
		t.Fatalf("first apply: %+v", res.Servers)
	}
	h.mem.FailReplica["web/1"] = true
	h.setCPU("web", 100, 0)
	st := evaluate(t, a, h.source(), "web")
	if st.Decision.Desired != 2 {
		t.Fatalf("decision: %+v", st.Decision)
	}
	res, err := a.Scale(ctx, h.source(), st)
	if err != nil || res.Outcome != state.ScaleFailed {
		t.Fatalf("failing scale: %+v, %v", res, err)
	}
	if got := h.running("web"); len(got) != 1 {
		t.Fatalf("replicas after the failed scale: %v, want 1 (the last good count)", got)
	}
	if ts, _ := h.eng.Store.ScaleTargets(); ts["web"].Replicas != 1 {
		t.Fatalf("target after the failed scale: %+v", ts["web"])
	}
	if p := h.plan(); p.HasChanges() {
		t.Fatalf("the plan after a failed scale has changes: %+v", p.Change("web"))
	}
	// The same need again: held, said once, nothing started.
	starts := h.mem.Starts
	for i := 0; i < 2; i++ {
		st = evaluate(t, a, h.source(), "web")
		res, err = a.Scale(ctx, h.source(), st)
		if err != nil || res.Outcome != state.ScaleHeld || !strings.Contains(res.Message, "tend retry web") {
			t.Fatalf("scale to a failed count: %+v, %v", res, err)
		}
	}
	if h.mem.Starts != starts {
		t.Fatalf("a held count started %d replicas", h.mem.Starts-starts)
	}
	decs, _ := h.eng.Store.ScaleDecisions("web", 0)
	if len(decs) != 2 || decs[0].Outcome != state.ScaleHeld || decs[1].Outcome != state.ScaleFailed {
		t.Fatalf("decisions: %+v", decs)
	}
	// tend retry lets it try again; the replica is fixed meanwhile.
	if _, err := h.eng.Retry("web"); err != nil {
		t.Fatal(err)
	}
	delete(h.mem.FailReplica, "web/1")
	st = evaluate(t, a, h.source(), "web")
	if res, err := a.Scale(ctx, h.source(), st); err != nil || res.Outcome != state.ScaleApplied {
		t.Fatalf("scale after retry: %+v, %v", res, err)
	}
	if got := h.running("web"); len(got) != 2 {
		t.Fatalf("replicas: %v, want 2", got)
	}
}

// A tend that stops after recording a decision and before its replicas
// are up converges to the recorded count on its next pass, without a
// second decision.
func TestAutoscaleResumesRecordedDecision(t *testing.T) {
	h, _ := newScaleHarness(t)
	if _, res := h.apply(); outcome(res, "web") != ResultVerified {
		t.Fatalf("first apply: %+v", res.Servers)
	}
	if _, err := h.eng.Store.BeginScale(state.ScaleDecision{Server: "web", FromReplicas: 1, ToReplicas: 3, Reason: "test"},
		state.ScaleTarget{Server: "web", Provider: "process.mem", Replicas: 3, Min: 1, Max: 4}); err != nil {
		t.Fatal(err)
	}
	p := h.plan()
	if c := p.Change("web"); c.Action != ActionScale || c.ToReplicas != 3 || len(c.Start) != 2 {
		t.Fatalf("plan after a restart mid-scale: %+v", c)
	}
	if _, res := h.apply(); outcome(res, "web") != ResultVerified {
		t.Fatalf("apply: %+v", res.Servers)
	}
	if got := h.running("web"); len(got) != 3 {
		t.Fatalf("replicas: %v, want 3", got)
	}
	if p := h.plan(); p.HasChanges() {
		t.Fatalf("second plan has changes: %+v", p.Change("web"))
	}
}

// scaleMetrics records what the loop reports of autoscaling.
type scaleMetrics struct {
	mu      sync.Mutex
	desired map[string]int
	use     map[string]map[int]map[string]float64
	scales  []string
}

func (m *scaleMetrics) SetScale(server string, desired, replicas, running int, samples map[int]map[string]float64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.desired[server] = desired
	m.use[server] = samples
}

func (m *scaleMetrics) ObserveScale(server string, up bool, outcome string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.scales = append(m.scales, fmt.Sprintf("%s up=%v %s", server, up, outcome))
}

func (m *scaleMetrics) ObservePass(string, time.Duration)        {}
func (m *scaleMetrics) ObserveFetch(time.Duration, error)        {}
func (m *scaleMetrics) SetServer(string, bool, bool, bool, bool) {}
func (m *scaleMetrics) ForgetServer(string)                      {}
func (m *scaleMetrics) IncRollback(string)                       {}
func (m *scaleMetrics) ObserveApply(string, time.Duration)       {}
func (m *scaleMetrics) SetLastSuccess(time.Time)                 {}

// TestLoopAutoscales: the daemon's autoscaler pass queues a scale, the loop
// applies it between passes (under the lock), reports it on the metrics and
// as a "scale" event, and the next pass leaves the count alone.
func TestLoopAutoscales(t *testing.T) {
	h, _ := newScaleHarness(t)
	log := logrus.New()
	logs := &syncBuffer{}
	log.SetOutput(logs)
	h.eng.Log = log
	events := &recordedEvents{}
	m := &scaleMetrics{desired: map[string]int{}, use: map[string]map[int]map[string]float64{}}
	loop := &Loop{Engine: h.eng, Fetcher: &DirFetcher{Dir: h.dir}, Log: log, Poll: time.Hour, Notify: events, Metrics: m,
		Autoscaler: &Autoscaler{Engine: h.eng, ReadyAfter: time.Nanosecond}, ScaleInterval: time.Hour}
	lh := &loopHarness{harness: h, loop: loop, logs: logs}
	ctx, cancel := context.WithCancel(context.Background())
	lh.done = make(chan struct{})
	go func() { defer close(lh.done); _ = loop.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-lh.done })
	lh.waitPasses(1)

	h.setCPU("web", 200, 0)
	sts := loop.EvaluateScale(context.Background())
	if len(sts) != 1 || sts[0].Decision.Desired != 2 {
		t.Fatalf("autoscaler pass: %+v", sts)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(h.running("web")) != 2 || len(events.of("scale")) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("not scaled: running %v, events %q, logs:\n%s", h.running("web"), events.events, logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if ev := events.of("scale"); !strings.Contains(ev[0], "scaled from 1 to 2 replicas: cpu") {
		t.Errorf("scale event: %q", ev)
	}
	m.mu.Lock()
	if m.desired["web"] != 2 || m.use["web"][0]["cpu"] != 200 || len(m.scales) != 1 || m.scales[0] != "web up=true applied" {
		t.Errorf("metrics: desired %v, use %v, scales %q", m.desired, m.use, m.scales)
	}
	m.mu.Unlock()
	if st := lh.pass(); st.LastResult != PassNoChange {
		t.Fatalf("the pass after a scale: %+v", st)
	}
	if got := h.running("web"); len(got) != 2 {
		t.Fatalf("the pass after a scale changed the count: %v", got)
	}
}
