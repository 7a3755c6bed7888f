package reconcile

import (
	"context"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/tendhq/tend/providers"
)

func TestRecordUsage(t *testing.T) {
	h, a := newScaleHarness(t)
	ctx := context.Background()
	if _, res := h.apply(); outcome(res, "web") != ResultVerified {
		t.Fatalf("apply: %+v", res.Servers)
	}
	h.setCPU("web", 150, 0)
	if _, err := a.Scale(ctx, h.source(), evaluate(t, a, h.source(), "web")); err != nil {
		t.Fatal(err)
	}
	if got := h.running("web"); len(got) != 2 {
		t.Fatalf("running %v, want 2", got)
	}
	t0 := time.Date(2026, 12, 7, 5, 0, 0, 0, time.UTC)
	// Three samples a minute apart: CPU is in percent of one core (web sets
	// no resources), summed over both replicas.
	for i, pct := range []float64{10, 40, 25} {
		h.eng.Now = func() time.Time { return t0.Add(time.Duration(i) * time.Minute) }
		h.mem.SetStats("web", 0, providers.Stats{CPUPercent: pct, MemoryBytes: 10 << 20})
		h.mem.SetStats("web", 1, providers.Stats{CPUPercent: pct, MemoryBytes: 30 << 20})
		got, err := h.eng.RecordUsage(ctx, h.source(), 90*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].Server != "web" || got[0].Replicas != 2 || got[0].MilliCPU != int64(pct*20) || got[0].MemoryBytes != 40<<20 {
			t.Fatalf("sample %d: %+v", i, got)
		}
	}
	sum, err := h.eng.Store.UsageSince(time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	// keep = 90s: the first sample (at 0) went when the third was written.
	w := sum["web"]
	if w.Samples != 2 || w.AvgMilliCPU != 650 || w.PeakMilliCPU != 800 || w.PeakMemoryBytes != 40<<20 {
		t.Errorf("usage of web = %+v, want 2 samples, avg 650m, peak 800m", w)
	}
}

// The loop records usage every UsageInterval, beside its passes.
func TestLoopSamplesUsage(t *testing.T) {
	h, _ := newScaleHarness(t)
	log := logrus.New()
	logs := &syncBuffer{}
	log.SetOutput(logs)
	h.eng.Log = log
	loop := &Loop{Engine: h.eng, Fetcher: &DirFetcher{Dir: h.dir}, Log: log, Poll: time.Hour, UsageInterval: 20 * time.Millisecond, UsageKeep: time.Hour}
	lh := &loopHarness{harness: h, loop: loop, logs: logs}
	ctx, cancel := context.WithCancel(context.Background())
	lh.done = make(chan struct{})
	go func() { defer close(lh.done); _ = loop.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-lh.done })
	lh.waitPasses(1)
	h.mem.SetStats("web", 0, providers.Stats{CPUPercent: 50, MemoryBytes: 8 << 20})
	deadline := time.Now().Add(10 * time.Second)
	for {
		sum, err := h.eng.Store.UsageSince(time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		if w := sum["web"]; w.Samples >= 2 && w.PeakMilliCPU == 500 && w.PeakMemoryBytes == 8<<20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no usage recorded: %+v; logs:\n%s", sum, logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
