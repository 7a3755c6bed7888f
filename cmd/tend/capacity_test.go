package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/tendhq/tend/providers"
	"github.com/tendhq/tend/providers/memory"
	"github.com/tendhq/tend/reconcile"
	"github.com/tendhq/tend/reconcile/capacity"
	"github.com/tendhq/tend/reconcile/state"
	"github.com/tendhq/tend/spec"
)

const capacityRepo = `
tend {
  %OVERCOMMIT%
}

provider "process" "local" {}

server "web" {
  provider = provider.process.local
  version  = "1.0.0"
  command  = ["./web"]
  %RESOURCES%
  scaling {
    min         = 1
    max         = 8
    cpu_percent = 70
  }
}
`

// capacitySource decodes capacityRepo with the given tend and resources
// settings.
func capacitySource(t *testing.T, overcommit, resources string) *reconcile.Source {
	t.Helper()
	hcl := strings.NewReplacer("%OVERCOMMIT%", overcommit, "%RESOURCES%", resources).Replace(capacityRepo)
	src, _, diags := reconcile.NewSource("repo", "rev-1", map[string][]byte{"main.hcl": []byte(hcl)}, spec.Options{})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	return src
}

// TestPlanCapacity: tend plan's check asks each provider of a sized server
// once, and none when no server is sized; its findings are diagnostics at
// the server block, and an error fails the plan.
func TestPlanCapacity(t *testing.T) {
	for _, tc := range []struct {
		name, overcommit, resources string
		calls                       int
		stderr                      []string
		err                         string
	}{
		{name: "no resources: no call", calls: 0},
		{name: "fits", resources: `resources { memory = "1Gi" }`, calls: 1},
		{
			name: "a warning", resources: `resources { memory = "4Gi" }`, calls: 1,
			stderr: []string{"Warning: Server would not fit on its host", "on repo/main.hcl line 8, in server \"web\":", "only 4 of them fit"},
		},
		{
			name: "an error past overcommit_percent", overcommit: "overcommit_percent = 150", resources: `resources { memory = "4Gi" }`, calls: 1,
			stderr: []string{"Error: Server exceeds its host's capacity and overcommit_percent", "on repo/main.hcl line 8, in server \"web\":"},
			err:    "1 capacity error: the servers would need more than their hosts have",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := memory.NewSized("process.local", providers.Capacity{Hosts: []providers.HostCapacity{{Name: "vm", MilliCPU: 2000, MemoryBytes: 16 << 30}}})
			reg := providers.NewRegistry()
			reg.Add("process.local", p)
			e := &reconcile.Engine{Registry: reg, Host: reconcile.Host{Name: "vm"}}
			var stderr bytes.Buffer
			cmd := &cobra.Command{}
			cmd.SetContext(context.Background())
			cmd.SetErr(&stderr)
			err := planCapacity(cmd, e, capacitySource(t, tc.overcommit, tc.resources), true)
			if (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
				t.Errorf("planCapacity: %v, want %q", err, tc.err)
			}
			if n := p.CapacityCalls(); n != tc.calls {
				t.Errorf("%d Capacity calls, want %d", n, tc.calls)
			}
			for _, want := range tc.stderr {
				if !strings.Contains(stderr.String(), want) {
					t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
				}
			}
			if len(tc.stderr) == 0 && stderr.Len() > 0 {
				t.Errorf("stderr: %s", stderr.String())
			}
		})
	}
}

// TestRenderCapacity: a cluster, a host whose memory is unknown and a
// provider whose capacity could not be read, as a person reads them.
func TestRenderCapacity(t *testing.T) {
	cfg := capacitySource(t, "", `resources { cpu = "500m" }`).Config
	cfg.Servers["api"] = &spec.Server{Name: "api", Provider: "kubernetes.prod", Replicas: 2, Resources: &spec.Resources{MilliCPU: 6000, MemoryBytes: 1 << 30}}
	cfg.Servers["db"] = &spec.Server{Name: "db", Provider: "docker.remote", Replicas: 1}
	r := capacity.Compute(capacity.Input{
		Config: cfg,
		Capacities: map[string]providers.Capacity{
			"process.local": {Hosts: []providers.HostCapacity{{Name: "vm", MilliCPU: 2000}}},
			"kubernetes.prod": {Cluster: true, Hosts: []providers.HostCapacity{
				{Name: "n1", MilliCPU: 4000, MemoryBytes: 8 << 30}, {Name: "n2", MilliCPU: 4000, MemoryBytes: 8 << 30}}},
		},
		Errors:  map[string]error{"docker.remote": errors.New("the Docker Engine at tcp://db:2376 is not reachable")},
		Current: map[string]int{"web": 1, "api": 2},
		Usage:   map[string]capacity.Usage{"web": {Now: &capacity.Amount{MilliCPU: 120, MemoryBytes: 30 << 20}, Replicas: 1}},
	})
	var out bytes.Buffer
	if err := renderCapacity(&out, r); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{
		"Cluster kubernetes.prod (2 schedulable nodes; its capacity is the sum of their allocatable)\n",
		"  capacity          8    16 GiB\n",
		"  requested now     12   2 GiB\n",
		"  headroom          -4   14 GiB\n",
		"  api     6, 1 GiB     2/2       2    12, 2 GiB  -         0/2\n",
		"  Would not fit at max: api.\n",
		"Host vm (process.local)\n",
		"  capacity          2     ?\n",
		"  headroom          -2    ?\n",
		"  used now          120m  30 MiB  1 of 1 server\n",
		"  web     500m, -      1/1       8    4, -    120m, 30 MiB  4/8\n",
		"docker.remote: capacity unknown: the Docker Engine at tcp://db:2376 is not reachable.\n  Not checked: db.\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("the report lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "average") || strings.Contains(got, "peak") {
		t.Errorf("figures it does not have are shown:\n%s", got)
	}
	var empty bytes.Buffer
	if err := renderCapacity(&empty, capacity.Compute(capacity.Input{})); err != nil || empty.String() != "No provider to report on.\n" {
		t.Errorf("an empty report: %q, %v", empty.String(), err)
	}
}

// The average and the peak of what tend run recorded: per server in two
// columns, per host summed (the peak as an upper bound, and said so).
func TestRenderCapacityRecorded(t *testing.T) {
	cfg := capacitySource(t, "", `resources { cpu = "500m" }`).Config
	cfg.Servers["db"] = &spec.Server{Name: "db", Provider: "process.local", Replicas: 1}
	usage, recorded := withRecorded(
		map[string]capacity.Usage{"web": {Now: &capacity.Amount{MilliCPU: 120, MemoryBytes: 30 << 20}, Replicas: 1}},
		map[string]state.UsageSummary{
			"web": {Server: "web", Samples: 60, AvgMilliCPU: 200, PeakMilliCPU: 900, AvgMemoryBytes: 40 << 20, PeakMemoryBytes: 64 << 20},
			"db":  {Server: "db", Samples: 30, AvgMilliCPU: 50, PeakMilliCPU: 100, AvgMemoryBytes: 10 << 20, PeakMemoryBytes: 12 << 20},
		})
	if !recorded {
		t.Fatal("withRecorded: nothing recorded")
	}
	r := capacity.Compute(capacity.Input{
		Config:     cfg,
		Capacities: map[string]providers.Capacity{"process.local": {Hosts: []providers.HostCapacity{{Name: "vm", MilliCPU: 2000, MemoryBytes: 4 << 30}}}},
		Current:    map[string]int{"web": 1, "db": 1},
		Usage:      usage,
	})
	r.UsageWindow = shortDuration(time.Hour)
	var out bytes.Buffer
	if err := renderCapacity(&out, r); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{
		"  used now          120m  30 MiB  1 of 2 servers\n",
		"  used (average)    250m  50 MiB  2 of 2 servers, the last 1h\n",
		"  used (peak)       1     76 MiB  2 of 2 servers, the last 1h; the sum of each server's peak\n",
		"  SERVER  PER REPLICA  REPLICAS  MAX  AT MAX  USED NOW      AVG 1h        PEAK 1h       FITS\n",
		"  db      unsized      1/1       1    -       -             50m, 10 MiB   100m, 12 MiB  -\n",
		"  web     500m, -      1/1       8    4, -    120m, 30 MiB  200m, 40 MiB  900m, 64 MiB  4/8\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("the report lacks %q:\n%s", want, got)
		}
	}
	if h := r.Hosts[0]; h.Used.Samples != 90 || h.Servers[1].Used.Samples != 60 {
		t.Errorf("recorded samples: host %d, web %d", h.Used.Samples, h.Servers[1].Used.Samples)
	}
	for d, want := range map[time.Duration]string{time.Hour: "1h", 90 * time.Minute: "1h30m", 30 * time.Second: "30s", 2*time.Minute + 5*time.Second: "2m5s"} {
		if got := shortDuration(d); got != want {
			t.Errorf("shortDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

// A targeted plan asks only the providers of its servers.
func TestPlanCapacityTargeted(t *testing.T) {
	src := capacitySource(t, "", `resources { memory = "1Gi" }`)
	src.Config.Servers["db"] = &spec.Server{Name: "db", Provider: "docker.other", Replicas: 1, Resources: &spec.Resources{MemoryBytes: 1 << 40}}
	local := memory.NewSized("process.local", providers.Capacity{Hosts: []providers.HostCapacity{{Name: "vm", MilliCPU: 2000, MemoryBytes: 16 << 30}}})
	other := memory.NewSized("docker.other", providers.Capacity{Hosts: []providers.HostCapacity{{Name: "db-host", MilliCPU: 2000, MemoryBytes: 1 << 30}}})
	reg := providers.NewRegistry()
	reg.Add("process.local", local)
	reg.Add("docker.other", other)
	var stderr bytes.Buffer
	cmd := &cobra.Command{}
	cmd.SetContext(context.Background())
	cmd.SetErr(&stderr)
	e := &reconcile.Engine{Registry: reg, Targets: []string{"web"}}
	if err := planCapacity(cmd, e, src, true); err != nil || stderr.Len() > 0 {
		t.Errorf("targeted planCapacity: %v\n%s", err, stderr.String())
	}
	if local.CapacityCalls() != 1 || other.CapacityCalls() != 0 {
		t.Errorf("Capacity calls: process.local %d, docker.other %d; want 1 and 0", local.CapacityCalls(), other.CapacityCalls())
	}
	e.Targets = nil
	if err := planCapacity(cmd, e, src, true); err != nil || !strings.Contains(stderr.String(), `Warning: Server would not fit on its host`) || other.CapacityCalls() != 1 {
		t.Errorf("whole planCapacity: %v, %d calls to docker.other\n%s", err, other.CapacityCalls(), stderr.String())
	}
	e.Targets = []string{"nope"}
	if err := planCapacity(cmd, e, src, true); err == nil {
		t.Error("an unknown target: no error")
	}
}
