package capacity

import (
	"maps"
	"slices"

	"github.com/hashicorp/hcl/v2"
	"github.com/tendhq/tend/providers"
	"github.com/tendhq/tend/spec"
)

// Input is everything a report is computed from.
type Input struct {
	Config *spec.Config
	// Selects reports whether a server's selector picks the host tend runs
	// on (the servers it does not pick run elsewhere); nil picks every
	// server.
	Selects func(selector map[string]string) bool
	// Capacities are the providers' answers, by provider key (TYPE.NAME).
	Capacities map[string]providers.Capacity
	// Errors say why a provider's capacity could not be read, by key.
	Errors map[string]error
	// Current is the number of replicas observed per server; nil when the
	// fleet was not observed (requested now is then not reported).
	Current map[string]int
	// Usage is what servers use, by server; it may be empty. Compute
	// reports only the figures it is given.
	Usage map[string]Usage
}

// Usage is what a server uses, summed over its replicas. A nil figure is
// one that is not known.
type Usage struct {
	// Now is a live sample; Replicas says of how many replicas.
	Now      *Amount `json:"now,omitempty"`
	Replicas int     `json:"sampled_replicas,omitempty"`
	// Avg and Peak are the average and the peak of recent samples (those
	// tend run recorded); Samples says how many there were. A host's Peak
	// is the sum of its servers' peaks, which need not have been at the
	// same time: an upper bound.
	Avg     *Amount `json:"avg,omitempty"`
	Peak    *Amount `json:"peak,omitempty"`
	Samples int     `json:"recorded_samples,omitempty"`
}

// IsZero reports whether no figure is known.
func (u Usage) IsZero() bool { return u.Now == nil && u.Avg == nil && u.Peak == nil }

// Report is the capacity of every host and what its servers ask of it.
type Report struct {
	// OvercommitPercent is tend { overcommit_percent }; 0 when not set.
	OvercommitPercent int `json:"overcommit_percent,omitempty"`
	// UsageWindow is the span of recent samples Avg and Peak are of
	// (when they are reported), such as "1h0m0s".
	UsageWindow string  `json:"usage_window,omitempty"`
	Hosts       []*Host `json:"hosts"`
	// Unknown lists the providers whose capacity is not known, with the
	// servers that could therefore not be checked.
	Unknown []*Unknown `json:"unknown,omitempty"`
	// Findings are the problems found, as diagnostics (see Diagnostics).
	Findings []*Finding `json:"-"`
}

// Host is one host, or one cluster, and the servers on it.
type Host struct {
	Name      string   `json:"name"`
	Providers []string `json:"providers"`
	// Cluster is set for a Kubernetes provider: Capacity is then the sum
	// of the allocatable of its Nodes schedulable nodes.
	Cluster bool `json:"cluster,omitempty"`
	Nodes   int  `json:"nodes,omitempty"`
	// Capacity is what the host has; a zero figure is unknown.
	Capacity Amount `json:"capacity"`
	// Limit is Capacity × overcommit_percent / 100, when it is set.
	Limit *Amount `json:"overcommit_limit,omitempty"`
	// RequestedNow is what the observed replicas ask for (when observed);
	// RequestedAtMax what every server asks for at its max replicas.
	RequestedNow   *Amount `json:"requested_now,omitempty"`
	RequestedAtMax Amount  `json:"requested_at_max"`
	// Headroom is Capacity - RequestedAtMax: negative when the host is
	// short. Meaningless in a figure whose capacity is unknown.
	Headroom Amount `json:"headroom"`
	// Used sums the usage of the servers on the host (sized or not) that
	// have one; Sampled is how many servers that is.
	Used    Usage     `json:"used,omitzero"`
	Sampled int       `json:"sampled_servers,omitempty"`
	Servers []*Server `json:"servers"`
	// WouldNotFit names the servers that would not fit at their max
	// replicas; Unsized those without resources, which are not counted.
	WouldNotFit []string `json:"would_not_fit,omitempty"`
	Unsized     []string `json:"unsized,omitempty"`

	nodes []Amount // a cluster's nodes, for the one-replica check
}

// Server is one server on a host.
type Server struct {
	Name     string `json:"name"`
	Provider string `json:"provider"`
	// PerReplica is its resources block; nil when it has none (unsized).
	PerReplica *Amount `json:"per_replica,omitempty"`
	Replicas   int     `json:"replicas"`
	// MaxReplicas is max(replicas, scaling.max).
	MaxReplicas int `json:"max_replicas"`
	// Current is the number of replicas observed, when observed.
	Current        *int    `json:"current_replicas,omitempty"`
	RequestedNow   *Amount `json:"requested_now,omitempty"`
	RequestedAtMax *Amount `json:"requested_at_max,omitempty"`
	Used           *Usage  `json:"used,omitempty"`
	// Fits is how many of its MaxReplicas replicas get a place on the
	// host; nil when it is unsized.
	Fits *int `json:"fits,omitempty"`

	Range hcl.Range `json:"-"`
	// scaled says whether MaxReplicas comes from scaling.max.
	scaled bool
}

// Unknown is a provider whose capacity is not known.
type Unknown struct {
	Provider string   `json:"provider"`
	Reason   string   `json:"reason"`
	Servers  []string `json:"servers,omitempty"`
}

// Severities of a finding.
const (
	SeverityWarning = "warning"
	SeverityError   = "error"
)

// Finding is one problem found, about one server (or one provider).
type Finding struct {
	Severity string `json:"severity"`
	Host     string `json:"host,omitempty"`
	Server   string `json:"server,omitempty"`
	Summary  string `json:"summary"`
	Detail   string `json:"detail"`
	// Range is the server block's (or the provider block's); nil when
	// there is none (the implicit process provider).
	Range *hcl.Range `json:"-"`
}

// Diagnostics returns the findings as diagnostics, in order.
func (r *Report) Diagnostics() hcl.Diagnostics {
	out := make(hcl.Diagnostics, 0, len(r.Findings))
	for _, f := range r.Findings {
		sev := hcl.DiagWarning
		if f.Severity == SeverityError {
			sev = hcl.DiagError
		}
		out = append(out, &hcl.Diagnostic{Severity: sev, Summary: f.Summary, Detail: f.Detail, Subject: f.Range})
	}
	return out
}

// HasErrors reports whether a finding is an error.
func (r *Report) HasErrors() bool {
	for _, f := range r.Findings {
		if f.Severity == SeverityError {
			return true
		}
	}
	return false
}

// Host returns the host named name, or nil.
func (r *Report) Host(name string) *Host {
	for _, h := range r.Hosts {
		if h.Name == name {
			return h
		}
	}
	return nil
}

// Selected returns the names of the servers of cfg that selects picks (all
// when selects is nil), sorted.
func Selected(cfg *spec.Config, selects func(map[string]string) bool) []string {
	if cfg == nil {
		return nil
	}
	var out []string
	for _, name := range slices.Sorted(maps.Keys(cfg.Servers)) {
		if s := cfg.Servers[name]; s != nil && (selects == nil || selects(s.Selector)) {
			out = append(out, name)
		}
	}
	return out
}

// Sized reports whether a server has resources that can be counted.
func Sized(s *spec.Server) bool {
	return s.Resources != nil && (s.Resources.MilliCPU > 0 || s.Resources.MemoryBytes > 0)
}

// MaxReplicas is the replicas a server may run at most: max(replicas,
// scaling.max), and whether scaling.max sets it.
func MaxReplicas(s *spec.Server) (int, bool) {
	if s.Scaling != nil && s.Scaling.Max > s.Replicas {
		return s.Scaling.Max, true
	}
	return max(s.Replicas, 0), false
}

// CountReplicas counts the observed instances of each server of cfg on its
// own provider (instances elsewhere are on their way out), from the
// observed instances by provider key.
func CountReplicas(cfg *spec.Config, observed map[string][]providers.Instance) map[string]int {
	out := map[string]int{}
	if cfg == nil {
		return out
	}
	for key, insts := range observed {
		for _, in := range insts {
			if s := cfg.Servers[in.Server]; s != nil && s.Provider == key {
				out[in.Server]++
			}
		}
	}
	return out
}
