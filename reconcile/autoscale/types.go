package autoscale

import "time"

// Names of the resource metrics. A metric block's name stands beside them.
const (
	// CPU is a replica's CPU use in percent of one core, or of its CPU
	// limit when resources sets one (as providers.Stats reports it).
	CPU = "cpu"
	// Memory is a replica's memory use in percent of its memory limit, or
	// of the host's memory when there is none.
	Memory = "memory"
)

// DefaultTolerance is how far the ratio of use to target may stray from 1
// before the autoscaler acts (the Kubernetes HPA's default).
const DefaultTolerance = 0.1

// Target is one metric a server scales on, with its per-replica target.
type Target struct {
	Name  string  `json:"name"`
	Value float64 `json:"target"`
}

// Sample is what one replica reported in one pass.
type Sample struct {
	Replica int `json:"replica"`
	// Ready is false for a replica that is starting, not running, or
	// younger than the start-up grace: it does not count toward the
	// average, and on a scale-up it counts as using nothing.
	Ready bool `json:"ready"`
	// Values holds the metrics that could be read, by Target.Name; a
	// missing name is a missing sample.
	Values map[string]float64 `json:"values,omitempty"`
	// Err says why a value is missing, for a person.
	Err string `json:"error,omitempty"`
}

// Input is everything one decision is computed from: no I/O happens in
// Decide.
type Input struct {
	Server   string
	Min, Max int
	// Current is the replica count tend keeps for the server now.
	Current int
	Targets []Target
	Samples []Sample
	// Tolerance is DefaultTolerance when zero.
	Tolerance float64
	// UpWindow and DownWindow are the stabilization windows
	// (scale_up_window, scale_down_window).
	UpWindow, DownWindow time.Duration
	Now                  time.Time
}

// MetricResult is one metric's part in a decision.
type MetricResult struct {
	Name string `json:"name"`
	// Value is the average over the ready replicas that reported it.
	Value  float64 `json:"value"`
	Target float64 `json:"target"`
	// Ratio is Value/Target, after missing and not-ready replicas were
	// accounted for.
	Ratio float64 `json:"ratio"`
	// Proposal is the replica count this metric asks for.
	Proposal int `json:"proposal"`
	// Sampled is how many replicas reported it.
	Sampled int `json:"sampled"`
	// Note says why the metric did not move the count, for a person
	// ("within tolerance", "no samples").
	Note string `json:"note,omitempty"`
}

// Decision is the outcome of one autoscaler pass over one server.
type Decision struct {
	Server  string    `json:"server"`
	At      time.Time `json:"at"`
	Current int       `json:"current"`
	// Proposal is the largest count any metric asked for, before the
	// windows, the bounds and the rate limit.
	Proposal int `json:"proposal"`
	// Desired is the count to run.
	Desired int            `json:"desired"`
	Metrics []MetricResult `json:"metrics"`
	// Limits name what held Desired back from Proposal: "scale_up_window",
	// "scale_down_window", "min", "max", "rate", "no_samples" (the Limit
	// constants).
	Limits []string `json:"limits,omitempty"`
	// Reason is one line for a person, such as
	// "cpu 142% of 70%: 2 → 5, limited to 4 (at most double per step)".
	Reason string `json:"reason"`
}

// Changes reports whether the decision changes the replica count.
func (d Decision) Changes() bool { return d.Desired != d.Current }
