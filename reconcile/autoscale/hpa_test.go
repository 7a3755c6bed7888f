package autoscale

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/tendhq/tend/spec"
)

// Markers in a list of values: the replica reported nothing for the
// metric, or is not ready.
var (
	gone = math.Inf(-1)
	idle = math.NaN()
)

// on returns one sample per value, replica i reporting vals[i] for name.
func on(name string, vals ...float64) []Sample {
	out := make([]Sample, len(vals))
	for i, v := range vals {
		out[i] = Sample{Replica: i, Ready: !math.IsNaN(v), Values: map[string]float64{}}
		if out[i].Ready && !math.IsInf(v, -1) {
			out[i].Values[name] = v
		}
	}
	return out
}

// merge adds the values of b to the samples of a, replica by replica.
func merge(a []Sample, more ...[]Sample) []Sample {
	for _, b := range more {
		for i := range b {
			for k, v := range b[i].Values {
				a[i].Values[k] = v
			}
		}
	}
	return a
}

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func TestTargets(t *testing.T) {
	sc := &spec.Scaling{Min: 1, Max: 5, CPUPercent: 70, MemoryPercent: 80, Metrics: []*spec.Metric{
		{Name: "qps", Port: "http", Path: "/metrics", Target: 100},
		{Name: "queue_depth", Port: "admin", Path: "/m", Target: 2.5},
	}}
	want := []Target{{CPU, 70}, {Memory, 80}, {"qps", 100}, {"queue_depth", 2.5}}
	if got := Targets(sc); !reflect.DeepEqual(got, want) {
		t.Errorf("Targets = %v, want %v", got, want)
	}
	if got := Targets(&spec.Scaling{Max: 3, MemoryPercent: 50}); !reflect.DeepEqual(got, []Target{{Memory, 50}}) {
		t.Errorf("Targets(memory only) = %v", got)
	}
	if got := Targets(nil); len(got) != 0 {
		t.Errorf("Targets(nil) = %v, want none", got)
	}
}

// TestDecideArithmetic checks one decision (no history) against the cases
// of the HPA's replica_calculator_test.go and the Kubernetes documentation.
// cpu values are percentages: the HPA tests' pods request 1 CPU, so 300m
// is 30%.
func TestDecideArithmetic(t *testing.T) {
	cases := []struct {
		name     string
		current  int
		min, max int // max 0 is 10, unless zeroMax
		zeroMax  bool
		targets  []Target
		samples  []Sample
		proposal int
		desired  int
		limits   []string
		reason   string
	}{
		{
			name: "scale up (TestReplicaCalcScaleUp)", current: 3,
			targets: []Target{{CPU, 30}}, samples: on(CPU, 30, 50, 70),
			proposal: 5, desired: 5,
			reason: "cpu 50% of 30%: 3 → 5",
		},
		{
			name: "a not-ready replica counts as idle on a scale-up (ScaleUpUnreadyLessScale)", current: 3,
			targets: []Target{{CPU, 30}}, samples: on(CPU, idle, 50, 70),
			proposal: 4, desired: 4,
			reason: "cpu 60% of 30% (2 of 3 replicas): 3 → 4",
		},
		{
			name: "not-ready replicas turn a scale-up around: no change (ScaleUpUnreadyNoScale)", current: 3,
			targets: []Target{{CPU, 30}}, samples: on(CPU, 40, idle, idle),
			proposal: 3, desired: 3,
			reason: "cpu 40% of 30% (1 of 3 replicas): no change counting not-ready replicas (the direction turns), stays at 3",
		},
		{
			name: "samples beyond the current count are ignored (ScaleUpIgnoresFailedPods)", current: 2,
			targets: []Target{{CPU, 30}}, samples: on(CPU, 50, 70, idle, idle),
			proposal: 4, desired: 4,
			reason: "cpu 60% of 30%: 2 → 4",
		},
		{
			name: "custom metric scale up (ScaleUpCM)", current: 3,
			targets: []Target{{"qps", 15000}}, samples: on("qps", 20000, 10000, 30000),
			proposal: 4, desired: 4,
			reason: "qps 20000 of 15000: 3 → 4",
		},
		{
			name: "scale down (ScaleDown)", current: 5,
			targets: []Target{{CPU, 50}}, samples: on(CPU, 10, 30, 50, 25, 25),
			proposal: 3, desired: 3,
			reason: "cpu 28% of 50%: 5 → 3",
		},
		{
			name: "custom metric scale down (ScaleDownCM)", current: 5,
			targets: []Target{{"qps", 20000}}, samples: on("qps", 12000, 12000, 12000, 12000, 12000),
			proposal: 3, desired: 3,
			reason: "qps 12000 of 20000: 5 → 3",
		},
		{
			name: "not-ready replicas do not count on a scale-down (ScaleDownIncludeUnreadyPods), then the rate", current: 5,
			targets: []Target{{CPU, 50}}, samples: on(CPU, 10, 30, 50, idle, idle),
			proposal: 2, desired: 3, limits: []string{LimitRate},
			reason: "cpu 30% of 50% (3 of 5 replicas): 5 → 2, limited to 3 (at most halve per step)",
		},
		{
			name: "starting replicas excluded (ScaleDownExcludeUnscheduledPods), then the rate", current: 5,
			targets: []Target{{CPU, 50}}, samples: on(CPU, 10, idle, idle, idle, idle),
			proposal: 1, desired: 3, limits: []string{LimitRate},
			reason: "cpu 10% of 50% (1 of 5 replicas): 5 → 1, limited to 3 (at most halve per step)",
		},
		{
			name: "within tolerance (Tolerance)", current: 3,
			targets: []Target{{CPU, 100}}, samples: on(CPU, 102, 102, 102),
			proposal: 3, desired: 3,
			reason: "cpu 102% of 100%: within tolerance, stays at 3",
		},
		{
			name: "custom metric within tolerance (ToleranceCM)", current: 3,
			targets: []Target{{"qps", 20000}}, samples: on("qps", 20000, 21000, 21000),
			proposal: 3, desired: 3,
			reason: "qps 20667 of 20000: within tolerance, stays at 3",
		},
		{
			name: "at the edge of the tolerance: 77% of 70% stays", current: 3,
			targets: []Target{{CPU, 70}}, samples: on(CPU, 77, 77, 77),
			proposal: 3, desired: 3,
			reason: "cpu 77% of 70%: within tolerance, stays at 3",
		},
		{
			name: "just past the tolerance: 78% of 70% scales", current: 3,
			targets: []Target{{CPU, 70}}, samples: on(CPU, 78, 78, 78),
			proposal: 4, desired: 4,
			reason: "cpu 78% of 70%: 3 → 4",
		},
		{
			name: "extra samples ignored (SuperfluousMetrics), then the rate", current: 4, max: 100,
			targets: []Target{{CPU, 100}}, samples: on(CPU, 400, 950, 300, 700, 320, 200),
			proposal: 24, desired: 8, limits: []string{LimitRate},
			reason: "cpu 588% of 100%: 4 → 24, limited to 8 (at most double per step)",
		},
		{
			name: "missing samples count as 100% on a scale-down (MissingMetrics)", current: 4,
			targets: []Target{{CPU, 100}}, samples: on(CPU, 40, 9.5, gone, gone),
			proposal: 3, desired: 3,
			reason: "cpu 24.8% of 100% (2 of 4 replicas): 4 → 3",
		},
		{
			name: "missing sample, ready one exactly at target (MissingMetricsNoChangeEq)", current: 2,
			targets: []Target{{CPU, 100}}, samples: on(CPU, 100, gone),
			proposal: 2, desired: 2,
			reason: "cpu 100% of 100% (1 of 2 replicas): within tolerance, stays at 2",
		},
		{
			name: "missing sample counts as idle on a scale-up (MissingMetricsNoChangeGt)", current: 2,
			targets: []Target{{CPU, 100}}, samples: on(CPU, 190, gone),
			proposal: 2, desired: 2,
			reason: "cpu 190% of 100% (1 of 2 replicas): within tolerance counting missing replicas, stays at 2",
		},
		{
			name: "missing sample counts as busy on a scale-down (MissingMetricsNoChangeLt)", current: 2,
			targets: []Target{{CPU, 100}}, samples: on(CPU, 60, gone),
			proposal: 2, desired: 2,
			reason: "cpu 60% of 100% (1 of 2 replicas): stays at 2",
		},
		{
			name: "missing and not ready, direction turns (MissingMetricsUnreadyChange)", current: 3,
			targets: []Target{{CPU, 50}}, samples: on(CPU, idle, 45, gone),
			proposal: 3, desired: 3,
			reason: "cpu 45% of 50% (1 of 3 replicas): no change counting missing replicas (the direction turns), stays at 3",
		},
		{
			name: "missing and not ready on a scale-up (MissingMetricsUnreadyScaleUp)", current: 3,
			targets: []Target{{CPU, 50}}, samples: on(CPU, idle, 200, gone),
			proposal: 4, desired: 4,
			reason: "cpu 200% of 50% (1 of 3 replicas): 3 → 4",
		},
		{
			name: "missing and not ready on a scale-down (MissingMetricsUnreadyScaleDown)", current: 4,
			targets: []Target{{CPU, 50}}, samples: on(CPU, idle, 10, 10, gone),
			proposal: 3, desired: 3,
			reason: "cpu 10% of 50% (2 of 4 replicas): 4 → 3",
		},
		{
			name: "a custom metric's missing sample counts as at target on a scale-down", current: 4,
			targets: []Target{{"qps", 50}}, samples: on("qps", idle, 10, 10, gone),
			proposal: 2, desired: 2,
			reason: "qps 10 of 50 (2 of 4 replicas): 4 → 2",
		},
		{
			name: "docs: twice the target doubles", current: 2,
			targets: []Target{{"latency_ms", 100}}, samples: on("latency_ms", 200, 200),
			proposal: 4, desired: 4,
			reason: "latency_ms 200 of 100: 2 → 4",
		},
		{
			name: "docs: half the target halves", current: 4,
			targets: []Target{{"latency_ms", 100}}, samples: on("latency_ms", 50, 50, 50, 50),
			proposal: 2, desired: 2,
			reason: "latency_ms 50 of 100: 4 → 2",
		},
		{
			name: "several metrics: the largest ask wins", current: 2,
			targets:  []Target{{CPU, 70}, {Memory, 80}, {"qps", 100}},
			samples:  merge(on(CPU, 90, 90), on(Memory, 20, 20), on("qps", 300, 300)),
			proposal: 6, desired: 4, limits: []string{LimitRate},
			reason: "qps 300 of 100: 2 → 6, limited to 4 (at most double per step)",
		},
		{
			name: "several metrics: one within tolerance keeps the replicas another would drop", current: 3,
			targets:  []Target{{CPU, 70}, {Memory, 50}},
			samples:  merge(on(CPU, 10, 10, 10), on(Memory, 50, 50, 50)),
			proposal: 3, desired: 3,
			reason: "memory 50% of 50%: within tolerance, stays at 3",
		},
		{
			name: "a metric without samples holds a scale-down", current: 3,
			targets:  []Target{{CPU, 50}, {"qps", 100}},
			samples:  on(CPU, 10, 10, 10),
			proposal: 1, desired: 3, limits: []string{LimitNoSamples},
			reason: "cpu 10% of 50%: wants 1, held at 3 while no samples of qps",
		},
		{
			name: "a metric without samples does not hold a scale-up", current: 2,
			targets:  []Target{{CPU, 50}, {"qps", 100}},
			samples:  on(CPU, 100, 100),
			proposal: 4, desired: 4,
			reason: "cpu 100% of 50%: 2 → 4",
		},
		{
			name: "no samples at all: stays", current: 3,
			targets: []Target{{CPU, 50}}, samples: on(CPU, gone, idle, gone),
			proposal: 3, desired: 3,
			reason: "no samples of cpu: stays at 3",
		},
		{
			name: "no samples at all, current below min: moves to min", current: 0, min: 2,
			targets:  []Target{{CPU, 50}},
			proposal: 0, desired: 2, limits: []string{LimitMin},
			reason: "no samples of cpu: at 0, raised to 2 (min)",
		},
		{
			name: "no targets", current: 3,
			samples:  on(CPU, 10, 10, 10),
			proposal: 3, desired: 3,
			reason: "no metric to scale on: stays at 3",
		},
		{
			name: "a target of 0 asks for nothing", current: 3,
			targets: []Target{{"qps", 0}}, samples: on("qps", 10, 10, 10),
			proposal: 3, desired: 3,
			reason: "qps has no positive target: stays at 3",
		},
		{
			name: "NaN and infinite values count as missing", current: 3,
			targets:  []Target{{"qps", 50}},
			samples:  []Sample{{Replica: 0, Ready: true, Values: map[string]float64{"qps": math.NaN()}}, {Replica: 1, Ready: true, Values: map[string]float64{"qps": 50}}, {Replica: 2, Ready: true, Values: map[string]float64{"qps": math.Inf(1)}}},
			proposal: 3, desired: 3,
			reason: "qps 50 of 50 (1 of 3 replicas): within tolerance, stays at 3",
		},
		{
			name: "values whose sum overflows count as no samples", current: 2,
			targets: []Target{{"qps", 1}}, samples: on("qps", math.MaxFloat64, math.MaxFloat64),
			proposal: 2, desired: 2,
			reason: "no samples of qps: stays at 2",
		},
		{
			name: "current above max moves to max at once", current: 10, max: 5,
			targets: []Target{{CPU, 70}}, samples: on(CPU, 70, 70, 70, 70, 70, 70, 70, 70, 70, 70),
			proposal: 10, desired: 5, limits: []string{LimitMax},
			reason: "cpu 70% of 70%: within tolerance at 10, limited to 5 (max)",
		},
		{
			name: "current above max and a wish for more: max", current: 6, max: 5,
			targets: []Target{{CPU, 50}}, samples: on(CPU, 100, 100, 100, 100, 100, 100),
			proposal: 12, desired: 5, limits: []string{LimitMax},
			reason: "cpu 100% of 50%: 6 → 12, limited to 5 (max)",
		},
		{
			name: "current far above max, a wish for fewer: max at once, not half", current: 20, max: 4,
			targets: []Target{{CPU, 50}}, samples: on(CPU, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5),
			proposal: 2, desired: 4, limits: []string{LimitRate},
			reason: "cpu 5% of 50%: 20 → 2, limited to 4 (above max, at most max in one step)",
		},
		{
			name: "current below min moves to min at once", current: 1, min: 3,
			targets: []Target{{CPU, 70}}, samples: on(CPU, 70),
			proposal: 1, desired: 3, limits: []string{LimitMin},
			reason: "cpu 70% of 70%: within tolerance at 1, raised to 3 (min)",
		},
		{
			name: "current below min and a wish for much more: min at once, no further", current: 1, min: 3,
			targets: []Target{{CPU, 10}}, samples: on(CPU, 100),
			proposal: 10, desired: 3, limits: []string{LimitRate},
			reason: "cpu 100% of 10%: 1 → 10, limited to 3 (below min, at most min in one step)",
		},
		{
			name: "max: a wish above it", current: 4, max: 6,
			targets: []Target{{CPU, 50}}, samples: on(CPU, 100, 100, 100, 100),
			proposal: 8, desired: 6, limits: []string{LimitMax},
			reason: "cpu 100% of 50%: 4 → 8, limited to 6 (max)",
		},
		{
			name: "min: a wish below it", current: 4, min: 3,
			targets: []Target{{CPU, 50}}, samples: on(CPU, 10, 10, 10, 10),
			proposal: 1, desired: 3, limits: []string{LimitMin},
			reason: "cpu 10% of 50%: 4 → 1, raised to 3 (min)",
		},
		{
			name: "max 0 and min 0: 0, no panic", current: 3, zeroMax: true,
			targets: []Target{{CPU, 50}}, samples: on(CPU, 50, 50, 50),
			proposal: 3, desired: 0, limits: []string{LimitMax},
			reason: "cpu 50% of 50%: within tolerance at 3, limited to 0 (max)",
		},
		{
			name: "duplicate and negative replicas are ignored", current: 2,
			targets: []Target{{CPU, 50}},
			samples: []Sample{
				{Replica: 1, Ready: true, Values: map[string]float64{CPU: 100}},
				{Replica: -1, Ready: true, Values: map[string]float64{CPU: 1000}},
				{Replica: 0, Ready: true, Values: map[string]float64{CPU: 100}},
				{Replica: 1, Ready: true, Values: map[string]float64{CPU: 1000}},
			},
			proposal: 4, desired: 4,
			reason: "cpu 100% of 50%: 2 → 4",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			max := tc.max
			if max == 0 && !tc.zeroMax {
				max = 10
			}
			in := Input{
				Server: "web", Min: tc.min, Max: max, Current: tc.current,
				Targets: tc.targets, Samples: tc.samples, Now: t0,
			}
			d := NewRecommender().Decide(in)
			if d.Proposal != tc.proposal || d.Desired != tc.desired {
				t.Errorf("proposal %d, desired %d; want %d, %d\n%+v", d.Proposal, d.Desired, tc.proposal, tc.desired, d)
			}
			if !reflect.DeepEqual(d.Limits, tc.limits) {
				t.Errorf("limits %q, want %q", d.Limits, tc.limits)
			}
			if d.Reason != tc.reason {
				t.Errorf("reason\n%s\nwant\n%s", d.Reason, tc.reason)
			}
			if d.Server != "web" || !d.At.Equal(t0) || d.Current != tc.current || d.Changes() != (tc.desired != tc.current) {
				t.Errorf("decision header: %+v", d)
			}
			if _, err := json.Marshal(d); err != nil {
				t.Errorf("the decision does not encode: %v", err)
			}
		})
	}
}

// TestDecideMetricResults checks the per-metric figures of a decision.
func TestDecideMetricResults(t *testing.T) {
	d := NewRecommender().Decide(Input{
		Server: "api", Min: 1, Max: 10, Current: 3, Now: t0,
		Targets: []Target{{CPU, 30}, {"qps", 100}, {Memory, 0}},
		Samples: merge(on(CPU, idle, 50, 70), on("qps", idle, gone, gone)),
	})
	want := []MetricResult{
		// ready average 60, ratio 2; the not-ready replica counts as 0:
		// 120/3 = 40, ratio 40/30, ceil(120/30) = 4.
		{Name: CPU, Value: 60, Target: 30, Ratio: 40.0 / 30, Proposal: 4, Sampled: 2},
		{Name: "qps", Target: 100, Proposal: 3, Note: "no samples"},
		{Name: Memory, Target: 0, Proposal: 3, Note: "the target is not a positive number"},
	}
	if !reflect.DeepEqual(d.Metrics, want) {
		t.Errorf("metrics\n%+v\nwant\n%+v", d.Metrics, want)
	}
	if d.Proposal != 4 || d.Desired != 4 {
		t.Errorf("proposal %d desired %d, want 4 4", d.Proposal, d.Desired)
	}
}

// TestDecideTolerance checks an Input's own tolerance.
func TestDecideTolerance(t *testing.T) {
	cases := []struct {
		tolerance float64
		want      int
	}{
		{0, 4},    // default 0.1: 80 of 70 is 14% over
		{0.2, 3},  // within 20%
		{-1, 4},   // nonsense: the default
		{0.14, 4}, // 0.142857… > 0.14
	}
	for _, tc := range cases {
		d := NewRecommender().Decide(Input{
			Server: "web", Min: 1, Max: 10, Current: 3, Now: t0, Tolerance: tc.tolerance,
			Targets: []Target{{CPU, 70}}, Samples: on(CPU, 80, 80, 80),
		})
		if d.Desired != tc.want {
			t.Errorf("tolerance %v: desired %d, want %d (%s)", tc.tolerance, d.Desired, tc.want, d.Reason)
		}
	}
}

// step is one Decide call in a sequence, with the replicas it starts from
// and the values of cpu of every replica.
type step struct {
	at      time.Duration // after t0
	current int
	cpu     float64 // every replica's cpu, target 50
	desired int
	limits  []string
	reason  string
}

func runSteps(t *testing.T, r *Recommender, up, down time.Duration, steps []step) {
	t.Helper()
	for i, s := range steps {
		vals := make([]float64, s.current)
		for j := range vals {
			vals[j] = s.cpu
		}
		d := r.Decide(Input{
			Server: "web", Min: 1, Max: 20, Current: s.current, Now: t0.Add(s.at),
			Targets: []Target{{CPU, 50}}, Samples: on(CPU, vals...),
			UpWindow: up, DownWindow: down,
		})
		if d.Desired != s.desired || !reflect.DeepEqual(d.Limits, s.limits) || (s.reason != "" && d.Reason != s.reason) {
			t.Errorf("step %d (t0+%v, current %d, cpu %v%%): desired %d, limits %q, reason %q; want %d, %q, %q",
				i, s.at, s.current, s.cpu, d.Desired, d.Limits, d.Reason, s.desired, s.limits, s.reason)
		}
	}
}

func TestScaleDownWindow(t *testing.T) {
	// Load drops at t0+1m; the count may drop once every ask of the last
	// 5 minutes agrees (the ask of t0, 4, leaves the window at t0+5m).
	runSteps(t, NewRecommender(), 0, 5*time.Minute, []step{
		{at: 0, current: 4, cpu: 50, desired: 4},
		{at: time.Minute, current: 4, cpu: 25, desired: 4, limits: []string{LimitDownWindow},
			reason: "cpu 25% of 50%: wants 2, held at 4 by scale_down_window (5m0s)"},
		{at: 4*time.Minute + 59*time.Second, current: 4, cpu: 25, desired: 4, limits: []string{LimitDownWindow}},
		{at: 5 * time.Minute, current: 4, cpu: 25, desired: 2, reason: "cpu 25% of 50%: 4 → 2"},
	})
}

func TestScaleDownWindowTakesTheLargestAsk(t *testing.T) {
	// Asks 8 (t0), 5 (t0+2m), then 2: the count goes down to 5 once the
	// ask of 8 leaves the window, and to 2 once the 5 does.
	runSteps(t, NewRecommender(), 0, 5*time.Minute, []step{
		{at: 0, current: 8, cpu: 50, desired: 8},
		{at: 2 * time.Minute, current: 8, cpu: 30, desired: 8, limits: []string{LimitDownWindow},
			reason: "cpu 30% of 50%: wants 5, held at 8 by scale_down_window (5m0s)"},
		{at: 4 * time.Minute, current: 8, cpu: 12.5, desired: 8, limits: []string{LimitDownWindow}},
		{at: 5 * time.Minute, current: 8, cpu: 12.5, desired: 5, limits: []string{LimitDownWindow},
			reason: "cpu 12.5% of 50%: wants 2, held at 5 by scale_down_window (5m0s)"},
		{at: 7 * time.Minute, current: 5, cpu: 20, desired: 3, limits: []string{LimitRate},
			reason: "cpu 20% of 50%: 5 → 2, limited to 3 (at most halve per step)"},
	})
}

func TestScaleUpWindow(t *testing.T) {
	// A need for more must last 3 minutes: a spike of 2 minutes does
	// nothing; the need that follows is met once 3 minutes have passed
	// since the last ask for fewer (at t0+3m).
	runSteps(t, NewRecommender(), 3*time.Minute, 0, []step{
		{at: 0, current: 2, cpu: 50, desired: 2},
		{at: time.Minute, current: 2, cpu: 100, desired: 2, limits: []string{LimitUpWindow},
			reason: "cpu 100% of 50%: wants 4, held at 2 by scale_up_window (3m0s)"},
		{at: 2 * time.Minute, current: 2, cpu: 100, desired: 2, limits: []string{LimitUpWindow}},
		{at: 3 * time.Minute, current: 2, cpu: 50, desired: 2, reason: "cpu 50% of 50%: within tolerance, stays at 2"},
		{at: 4 * time.Minute, current: 2, cpu: 100, desired: 2, limits: []string{LimitUpWindow}},
		{at: 5*time.Minute + 59*time.Second, current: 2, cpu: 100, desired: 2, limits: []string{LimitUpWindow}},
		{at: 6 * time.Minute, current: 2, cpu: 100, desired: 4, reason: "cpu 100% of 50%: 2 → 4"},
	})
}

func TestScaleUpWindowTakesTheSmallestAsk(t *testing.T) {
	// Asks 6, 4, 6 within the window, from 2: once the ask of 2 leaves
	// it, the count goes to 4 (every ask of the window wants 4 or more),
	// not 6; then to 6, the smallest ask of the next window.
	runSteps(t, NewRecommender(), 2*time.Minute, 0, []step{
		{at: 0, current: 2, cpu: 50, desired: 2},
		{at: time.Minute, current: 2, cpu: 150, desired: 2, limits: []string{LimitUpWindow}},
		{at: 90 * time.Second, current: 2, cpu: 100, desired: 2, limits: []string{LimitUpWindow}},
		{at: 2 * time.Minute, current: 2, cpu: 150, desired: 4, limits: []string{LimitUpWindow},
			reason: "cpu 150% of 50%: wants 6, held at 4 by scale_up_window (2m0s)"},
		{at: 3*time.Minute + 30*time.Second, current: 4, cpu: 150, desired: 6, limits: []string{LimitUpWindow},
			reason: "cpu 150% of 50%: wants 12, held at 6 by scale_up_window (2m0s)"},
	})
}

func TestRateLimitSteps(t *testing.T) {
	// With no windows, up by doubling and down by halving, one step each.
	runSteps(t, NewRecommender(), 0, 0, []step{
		{at: 0, current: 1, cpu: 500, desired: 2, limits: []string{LimitRate}},
		{at: time.Second, current: 2, cpu: 500, desired: 4, limits: []string{LimitRate}},
		{at: 2 * time.Second, current: 4, cpu: 250, desired: 8, limits: []string{LimitRate}},
		{at: 3 * time.Second, current: 8, cpu: 62.5, desired: 10},
		{at: 4 * time.Second, current: 10, cpu: 5, desired: 5, limits: []string{LimitRate},
			reason: "cpu 5% of 50%: 10 → 1, limited to 5 (at most halve per step)"},
		{at: 5 * time.Second, current: 5, cpu: 5, desired: 3, limits: []string{LimitRate}},
		{at: 6 * time.Second, current: 3, cpu: 5, desired: 2, limits: []string{LimitRate}},
		{at: 7 * time.Second, current: 2, cpu: 5, desired: 1},
	})
}

func TestBound(t *testing.T) {
	cases := []struct {
		cur, min, max, n int
		want             int
		limit, phrase    string
	}{
		{cur: 0, min: 0, max: 10, n: 5, want: 1, limit: LimitRate, phrase: "from 0, at most 1 per step"},
		{cur: 0, min: 3, max: 10, n: 5, want: 3, limit: LimitRate, phrase: "below min, at most min in one step"},
		{cur: 0, min: 3, max: 10, n: 0, want: 3, limit: LimitMin, phrase: "min"},
		{cur: 3, min: 1, max: 10, n: 7, want: 6, limit: LimitRate, phrase: "at most double per step"},
		{cur: 3, min: 1, max: 5, n: 7, want: 5, limit: LimitMax, phrase: "max"},
		{cur: 7, min: 1, max: 10, n: 1, want: 4, limit: LimitRate, phrase: "at most halve per step"},
		{cur: 7, min: 5, max: 10, n: 1, want: 5, limit: LimitMin, phrase: "min"},
		{cur: 4, min: 1, max: 10, n: 4, want: 4},
		{cur: math.MaxInt, min: 1, max: math.MaxInt, n: math.MaxInt, want: math.MaxInt},
		{cur: math.MaxInt/2 + 1, min: 1, max: math.MaxInt, n: math.MaxInt, want: math.MaxInt},
	}
	for _, tc := range cases {
		got, limit, phrase := bound(Input{Current: tc.cur, Min: tc.min, Max: tc.max}, tc.n)
		if got != tc.want || limit != tc.limit || phrase != tc.phrase {
			t.Errorf("bound(current %d, [%d, %d], %d) = %d, %q, %q; want %d, %q, %q",
				tc.cur, tc.min, tc.max, tc.n, got, limit, phrase, tc.want, tc.limit, tc.phrase)
		}
	}
}

func TestHistoryIsPrunedAndForgotten(t *testing.T) {
	r := NewRecommender()
	for i := range 100 {
		// Asks of 2 and 4 by turns, so that none is a repeat.
		cpu := float64(50 + 50*(i%2))
		r.Decide(Input{
			Server: "web", Min: 1, Max: 10, Current: 2, Now: t0.Add(time.Duration(i) * time.Minute),
			Targets: []Target{{CPU, 50}}, Samples: on(CPU, cpu, cpu),
			UpWindow: time.Minute, DownWindow: 5 * time.Minute,
		})
	}
	// Kept: the asks after now-5m (now-4m … now-1m) and now's.
	if n := len(r.history["web"]); n != 5 {
		t.Errorf("history holds %d asks, want 5", n)
	}
	// A steady load keeps one ask: a run of equal asks is kept as its newest.
	for i := range 100 {
		r.Decide(Input{
			Server: "steady", Min: 1, Max: 10, Current: 2, Now: t0.Add(time.Duration(i) * time.Second),
			Targets: []Target{{CPU, 50}}, Samples: on(CPU, 50, 50), DownWindow: 5 * time.Minute,
		})
	}
	if h := r.history["steady"]; len(h) != 1 || !h[0].at.Equal(t0.Add(99*time.Second)) {
		t.Errorf("steady history: %+v, want one ask at t0+99s", h)
	}
	r.Forget("web")
	if _, ok := r.history["web"]; ok {
		t.Error("Forget left the history")
	}
	// Forgotten: a scale-down is not held by the old asks.
	d := r.Decide(Input{
		Server: "web", Min: 1, Max: 10, Current: 2, Now: t0.Add(100 * time.Minute),
		Targets: []Target{{CPU, 50}}, Samples: on(CPU, 10, 10), DownWindow: 5 * time.Minute,
	})
	if d.Desired != 1 || d.Limits != nil {
		t.Errorf("after Forget: desired %d, limits %q; want 1, none", d.Desired, d.Limits)
	}
}

func TestZeroRecommender(t *testing.T) {
	var r Recommender
	d := r.Decide(Input{Server: "web", Min: 1, Max: 4, Current: 2, Now: t0, Targets: []Target{{CPU, 50}}, Samples: on(CPU, 100, 100)})
	if d.Desired != 4 {
		t.Errorf("desired %d, want 4", d.Desired)
	}
}

func TestDecideZeroInput(t *testing.T) {
	d := NewRecommender().Decide(Input{})
	want := Decision{Metrics: []MetricResult{}, Reason: "no metric to scale on: stays at 0"}
	if !reflect.DeepEqual(d, want) {
		t.Errorf("Decide(Input{}) = %+v, want %+v", d, want)
	}
}

func TestDecideConcurrent(t *testing.T) {
	r := NewRecommender()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			server := fmt.Sprintf("s%d", i%4)
			for j := range 200 {
				d := r.Decide(Input{
					Server: server, Min: 1, Max: 10, Current: 2, Now: t0.Add(time.Duration(j) * time.Second),
					Targets: []Target{{CPU, 50}}, Samples: on(CPU, 100, 100), DownWindow: time.Minute,
				})
				if d.Desired != 4 {
					t.Errorf("desired %d, want 4", d.Desired)
					return
				}
			}
			r.Forget(server)
		})
	}
	wg.Wait()
}

// TestReasonWhenTheRateBitesAfterTheWindow: idle replicas ask for 0, an
// earlier ask of 2 keeps the window at 2, and the rate limit stops the
// step at 3: the line says the step and the rate, not a "held at" the
// count does not stay at.
func TestReasonWhenTheRateBitesAfterTheWindow(t *testing.T) {
	runSteps(t, NewRecommender(), 0, 5*time.Second, []step{
		{at: 0, current: 6, cpu: 10, desired: 3, limits: []string{LimitRate},
			reason: "cpu 10% of 50%: 6 → 2, limited to 3 (at most halve per step)"},
		{at: time.Second, current: 6, cpu: 0, desired: 3, limits: []string{LimitDownWindow, LimitRate},
			reason: "cpu 0% of 50%: 6 → 2, limited to 3 (at most halve per step)"},
	})
}
