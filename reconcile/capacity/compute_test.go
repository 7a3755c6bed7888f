package capacity

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/tendhq/tend/providers"
	"github.com/tendhq/tend/spec"
)

const (
	gi = int64(1) << 30
	mi = int64(1) << 20
)

// srv is a server at line `line` of main.hcl.
func srv(name, provider string, line, replicas, maxReplicas int, milli, mem int64) *spec.Server {
	s := &spec.Server{Name: name, Provider: provider, Replicas: replicas,
		DeclRange: hcl.Range{Filename: "main.hcl", Start: hcl.Pos{Line: line, Column: 1}, End: hcl.Pos{Line: line, Column: 10}}}
	if maxReplicas > 0 {
		s.Scaling = &spec.Scaling{Min: replicas, Max: maxReplicas}
	}
	if milli > 0 || mem > 0 {
		s.Resources = &spec.Resources{MilliCPU: milli, MemoryBytes: mem}
	}
	return s
}

func config(overcommit int, servers ...*spec.Server) *spec.Config {
	cfg := &spec.Config{Servers: map[string]*spec.Server{}, Providers: map[string]*spec.Provider{}}
	cfg.Tend.OvercommitPercent = overcommit
	for _, s := range servers {
		cfg.Servers[s.Name] = s
	}
	return cfg
}

func host(name string, milli, mem int64) providers.Capacity {
	return providers.Capacity{Hosts: []providers.HostCapacity{{Name: name, MilliCPU: milli, MemoryBytes: mem}}}
}

// finding is a finding in short: "severity server line summary".
type finding struct {
	severity, server string
	line             int
	summary          string
}

func findings(r *Report) []finding {
	var out []finding
	for _, f := range r.Findings {
		line := 0
		if f.Range != nil {
			line = f.Range.Start.Line
		}
		out = append(out, finding{f.Severity, f.Server, line, f.Summary})
	}
	return out
}

func fits(r *Report) map[string]int {
	out := map[string]int{}
	for _, h := range r.Hosts {
		for _, s := range h.Servers {
			if s.Fits != nil {
				out[s.Name] = *s.Fits
			}
		}
	}
	return out
}

func TestCompute(t *testing.T) {
	const notFit, overcommitted = "Server would not fit on its host", "Server exceeds its host's capacity and overcommit_percent"
	type want struct {
		hosts       []string
		capacity    map[string]Amount // by host
		atMax       map[string]Amount
		headroom    map[string]Amount
		wouldNotFit map[string][]string
		unsized     map[string][]string
		fits        map[string]int
		findings    []finding
		unknown     []string
		errors      bool
	}
	cases := []struct {
		name string
		in   Input
		want want
	}{
		{
			name: "fits",
			in: Input{
				Config:     config(0, srv("a", "process.local", 3, 2, 4, 500, 1*gi)),
				Capacities: map[string]providers.Capacity{"process.local": host("vm", 4000, 8*gi)},
			},
			want: want{
				hosts:    []string{"vm"},
				capacity: map[string]Amount{"vm": {4000, 8 * gi}},
				atMax:    map[string]Amount{"vm": {2000, 4 * gi}},
				headroom: map[string]Amount{"vm": {2000, 4 * gi}},
				fits:     map[string]int{"a": 4},
			},
		},
		{
			// a's replicas are placed first (2 CPUs), then b's (1), then
			// b's growth: 1 more of its 3 fits.
			name: "short: a warning for the server that does not fit",
			in: Input{
				Config: config(0,
					srv("a", "process.local", 3, 2, 0, 1000, 1*gi),
					srv("b", "process.local", 12, 1, 4, 1000, 1*gi)),
				Capacities: map[string]providers.Capacity{"process.local": host("vm", 4000, 8*gi)},
			},
			want: want{
				hosts:       []string{"vm"},
				atMax:       map[string]Amount{"vm": {6000, 6 * gi}},
				headroom:    map[string]Amount{"vm": {-2000, 2 * gi}},
				wouldNotFit: map[string][]string{"vm": {"b"}},
				fits:        map[string]int{"a": 2, "b": 2},
				findings:    []finding{{SeverityWarning, "b", 12, notFit}},
			},
		},
		{
			name: "short, within overcommit_percent: still a warning",
			in: Input{
				Config: config(150,
					srv("a", "process.local", 3, 2, 0, 1000, 1*gi),
					srv("b", "process.local", 12, 1, 4, 1000, 1*gi)),
				Capacities: map[string]providers.Capacity{"process.local": host("vm", 4000, 8*gi)},
			},
			want: want{
				hosts:       []string{"vm"},
				wouldNotFit: map[string][]string{"vm": {"b"}},
				findings:    []finding{{SeverityWarning, "b", 12, notFit}},
			},
		},
		{
			name: "past overcommit_percent: an error",
			in: Input{
				Config: config(120,
					srv("a", "process.local", 3, 2, 0, 1000, 1*gi),
					srv("b", "process.local", 12, 1, 4, 1000, 1*gi)),
				Capacities: map[string]providers.Capacity{"process.local": host("vm", 4000, 8*gi)},
			},
			want: want{
				hosts:       []string{"vm"},
				wouldNotFit: map[string][]string{"vm": {"b"}},
				findings:    []finding{{SeverityError, "b", 12, overcommitted}},
				errors:      true,
			},
		},
		{
			// Only c's growth is past the bound: b is warned about, c is
			// an error.
			name: "some servers past overcommit_percent, some within",
			in: Input{
				Config: config(150,
					srv("b", "process.local", 3, 1, 2, 1000, 0),
					srv("c", "process.local", 9, 1, 3, 1000, 0)),
				Capacities: map[string]providers.Capacity{"process.local": host("vm", 2000, 0)},
			},
			want: want{
				hosts:       []string{"vm"},
				wouldNotFit: map[string][]string{"vm": {"b", "c"}},
				fits:        map[string]int{"b": 1, "c": 1},
				findings:    []finding{{SeverityWarning, "b", 3, notFit}, {SeverityError, "c", 9, overcommitted}},
				errors:      true,
			},
		},
		{
			name: "unsized servers are listed, not counted",
			in: Input{
				Config: config(0,
					srv("a", "process.local", 3, 1, 0, 0, 0),
					srv("b", "process.local", 9, 1, 0, 0, 512*mi)),
				Capacities: map[string]providers.Capacity{"process.local": host("vm", 4000, 8*gi)},
			},
			want: want{
				hosts:   []string{"vm"},
				atMax:   map[string]Amount{"vm": {0, 512 * mi}},
				unsized: map[string][]string{"vm": {"a"}},
				fits:    map[string]int{"b": 1},
			},
		},
		{
			// Two process providers and a local Docker Engine are one
			// machine: the smaller figures count.
			name: "providers on one host share it",
			in: Input{
				Config: config(0,
					srv("a", "process.one", 3, 3, 0, 1000, 1*gi),
					srv("b", "docker.local", 9, 2, 0, 1000, 1*gi)),
				Capacities: map[string]providers.Capacity{
					"process.one": host("vm", 4000, 8*gi), "process.two": host("vm", 4000, 8*gi),
					"docker.local": host("vm", 6000, 7*gi),
				},
			},
			want: want{
				hosts:       []string{"vm"},
				capacity:    map[string]Amount{"vm": {4000, 7 * gi}},
				atMax:       map[string]Amount{"vm": {5000, 5 * gi}},
				wouldNotFit: map[string][]string{"vm": {"b"}},
				fits:        map[string]int{"a": 3, "b": 1},
				findings:    []finding{{SeverityWarning, "b", 9, notFit}},
			},
		},
		{
			name: "a cluster: the sum of its nodes, and a replica larger than any node",
			in: Input{
				Config: config(0,
					srv("big", "kubernetes.prod", 3, 1, 0, 6000, 1*gi),
					srv("web", "kubernetes.prod", 9, 2, 6, 1000, 2*gi)),
				Capacities: map[string]providers.Capacity{"kubernetes.prod": {Cluster: true, Hosts: []providers.HostCapacity{
					{Name: "n1", MilliCPU: 4000, MemoryBytes: 16 * gi}, {Name: "n2", MilliCPU: 4000, MemoryBytes: 16 * gi},
				}}},
			},
			want: want{
				hosts:       []string{"kubernetes.prod"},
				capacity:    map[string]Amount{"kubernetes.prod": {8000, 32 * gi}},
				atMax:       map[string]Amount{"kubernetes.prod": {12000, 13 * gi}},
				wouldNotFit: map[string][]string{"kubernetes.prod": {"big"}},
				fits:        map[string]int{"big": 0, "web": 6},
				findings:    []finding{{SeverityWarning, "big", 3, "Replica larger than any node"}},
			},
		},
		{
			name: "a replica larger than any node is an error once overcommit_percent is set",
			in: Input{
				Config: config(200, srv("big", "kubernetes.prod", 3, 1, 0, 500, 64*gi)),
				Capacities: map[string]providers.Capacity{"kubernetes.prod": {Cluster: true, Hosts: []providers.HostCapacity{
					{Name: "n1", MilliCPU: 4000, MemoryBytes: 16 * gi}, {Name: "n2", MilliCPU: 4000, MemoryBytes: 16 * gi},
					{Name: "n3", MilliCPU: 4000, MemoryBytes: 16 * gi}, {Name: "n4", MilliCPU: 4000, MemoryBytes: 16 * gi},
				}}},
			},
			want: want{
				wouldNotFit: map[string][]string{"kubernetes.prod": {"big"}},
				findings:    []finding{{SeverityError, "big", 3, "Replica larger than any node"}},
				errors:      true,
			},
		},
		{
			name: "a cluster without a schedulable node",
			in: Input{
				Config:     config(0, srv("web", "kubernetes.prod", 9, 1, 0, 100, 0), srv("free", "kubernetes.prod", 20, 1, 0, 0, 0)),
				Capacities: map[string]providers.Capacity{"kubernetes.prod": {Cluster: true}},
			},
			want: want{
				hosts:       []string{"kubernetes.prod"},
				wouldNotFit: map[string][]string{"kubernetes.prod": {"web"}},
				unsized:     map[string][]string{"kubernetes.prod": {"free"}},
				fits:        map[string]int{"web": 0},
				findings:    []finding{{SeverityWarning, "web", 9, "No schedulable node"}},
			},
		},
		{
			name: "capacity unknown: a warning at the provider block when it could not be read",
			in: func() Input {
				cfg := config(150,
					srv("a", "docker.remote", 3, 1, 0, 1000, 0),
					srv("b", "kubernetes.prod", 9, 1, 0, 1000, 0),
					srv("c", "systemd.hosts", 15, 1, 0, 0, 0))
				cfg.Providers["docker.remote"] = &spec.Provider{Type: "docker", Name: "remote",
					DeclRange: hcl.Range{Filename: "main.hcl", Start: hcl.Pos{Line: 1, Column: 1}}}
				return Input{Config: cfg, Capacities: map[string]providers.Capacity{},
					Errors: map[string]error{"docker.remote": errors.New("the Docker Engine is not reachable"), "systemd.hosts": ErrNoCapacity}}
			}(),
			want: want{
				unknown:  []string{"docker.remote", "kubernetes.prod", "systemd.hosts"},
				findings: []finding{{SeverityWarning, "", 1, "Capacity unknown"}},
			},
		},
		{
			name: "the selector keeps the servers of other hosts out",
			in: Input{
				Config: config(0,
					func() *spec.Server {
						s := srv("edge", "process.local", 3, 1, 0, 64000, 0)
						s.Selector = map[string]string{"role": "edge"}
						return s
					}(),
					srv("a", "process.local", 9, 1, 0, 1000, 0)),
				Selects:    func(sel map[string]string) bool { return sel["role"] == "" },
				Capacities: map[string]providers.Capacity{"process.local": host("vm", 2000, 0)},
			},
			want: want{
				hosts: []string{"vm"},
				atMax: map[string]Amount{"vm": {1000, 0}},
				fits:  map[string]int{"a": 1},
			},
		},
		{
			name: "a figure the host does not know is not checked",
			in: Input{
				Config:     config(0, srv("a", "process.local", 3, 1, 10, 1000, 64*gi)),
				Capacities: map[string]providers.Capacity{"process.local": host("vm", 0, 8*gi)},
			},
			want: want{
				hosts:       []string{"vm"},
				wouldNotFit: map[string][]string{"vm": {"a"}},
				fits:        map[string]int{"a": 0},
				findings:    []finding{{SeverityWarning, "a", 3, notFit}},
			},
		},
		{
			name: "figures beyond int64 saturate",
			in: Input{
				Config: config(1000,
					srv("a", "process.local", 3, 10000, 0, math.MaxInt64/2, math.MaxInt64/2),
					srv("b", "process.local", 9, 10000, 0, math.MaxInt64/2, math.MaxInt64/2)),
				Capacities: map[string]providers.Capacity{"process.local": host("vm", math.MaxInt64, math.MaxInt64)},
			},
			want: want{
				atMax:       map[string]Amount{"vm": {math.MaxInt64, math.MaxInt64}},
				wouldNotFit: map[string][]string{"vm": {"a", "b"}},
				fits:        map[string]int{"a": 1, "b": 0},
				findings:    []finding{{SeverityError, "a", 3, overcommitted}, {SeverityError, "b", 9, overcommitted}},
				errors:      true,
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := Compute(tc.in)
			var names []string
			for _, h := range r.Hosts {
				names = append(names, h.Name)
			}
			if tc.want.hosts != nil && !slices.Equal(names, tc.want.hosts) {
				t.Errorf("hosts %q, want %q", names, tc.want.hosts)
			}
			for name, a := range tc.want.capacity {
				if h := r.Host(name); h == nil || h.Capacity != a {
					t.Errorf("capacity of %s: %+v, want %+v", name, h, a)
				}
			}
			for name, a := range tc.want.atMax {
				if h := r.Host(name); h == nil || h.RequestedAtMax != a {
					t.Errorf("requested at max on %s: %+v, want %+v", name, h, a)
				}
			}
			for name, a := range tc.want.headroom {
				if h := r.Host(name); h == nil || h.Headroom != a {
					t.Errorf("headroom of %s: %+v, want %+v", name, h, a)
				}
			}
			for name, list := range tc.want.wouldNotFit {
				if h := r.Host(name); h == nil || !slices.Equal(h.WouldNotFit, list) {
					t.Errorf("would not fit on %s: %+v, want %q", name, h, list)
				}
			}
			for name, list := range tc.want.unsized {
				if h := r.Host(name); h == nil || !slices.Equal(h.Unsized, list) {
					t.Errorf("unsized on %s: %+v, want %q", name, h, list)
				}
			}
			if tc.want.fits != nil {
				if got := fits(r); !mapsEqual(got, tc.want.fits) {
					t.Errorf("fits %v, want %v", got, tc.want.fits)
				}
			}
			if got := findings(r); !slices.Equal(got, tc.want.findings) {
				t.Errorf("findings:\n got %+v\nwant %+v", got, tc.want.findings)
			}
			var unknown []string
			for _, u := range r.Unknown {
				unknown = append(unknown, u.Provider)
			}
			if !slices.Equal(unknown, tc.want.unknown) {
				t.Errorf("unknown %q, want %q", unknown, tc.want.unknown)
			}
			if r.HasErrors() != tc.want.errors {
				t.Errorf("HasErrors = %v, want %v", r.HasErrors(), tc.want.errors)
			}
			diags := r.Diagnostics()
			if len(diags) != len(r.Findings) || diags.HasErrors() != tc.want.errors {
				t.Errorf("diagnostics %v do not match the findings", diags)
			}
			for _, d := range diags {
				if d.Summary != "Capacity unknown" && (d.Subject == nil || d.Subject.Filename != "main.hcl") {
					t.Errorf("diagnostic %q has no server position: %v", d.Summary, d.Subject)
				}
				if strings.TrimSpace(d.Detail) == "" {
					t.Errorf("diagnostic %q has no detail", d.Summary)
				}
			}
		})
	}
}

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
