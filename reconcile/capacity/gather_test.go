package capacity

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/tendhq/tend/providers"
	"github.com/tendhq/tend/providers/memory"
	"github.com/tendhq/tend/spec"
)

func TestKeys(t *testing.T) {
	edge := srv("edge", "docker.edge", 1, 1, 0, 1000, 0)
	edge.Selector = map[string]string{"role": "edge"}
	cfg := config(0, srv("a", "process.local", 1, 1, 0, 1000, 0), srv("b", "systemd.hosts", 2, 1, 0, 0, 0), edge)
	cfg.Providers["kubernetes.idle"] = &spec.Provider{Type: "kubernetes", Name: "idle"}
	notEdge := func(sel map[string]string) bool { return sel["role"] != "edge" }
	for _, tc := range []struct {
		selects   func(map[string]string) bool
		sizedOnly bool
		want      []string
	}{
		{notEdge, true, []string{"process.local"}},
		{nil, true, []string{"docker.edge", "process.local"}},
		{notEdge, false, []string{"kubernetes.idle", "process.local", "systemd.hosts"}},
	} {
		if got := Keys(cfg, tc.selects, tc.sizedOnly); !slices.Equal(got, tc.want) {
			t.Errorf("Keys(sizedOnly %v) = %q, want %q", tc.sizedOnly, got, tc.want)
		}
	}
	if got := Keys(config(0, srv("a", spec.DefaultProcessProvider, 1, 1, 0, 0, 0)), nil, false); !slices.Equal(got, []string{spec.DefaultProcessProvider}) {
		t.Errorf("Keys without providers = %q, want the implicit %s", got, spec.DefaultProcessProvider)
	}
	if got := Keys(config(0, srv("a", "process.local", 1, 1, 0, 0, 0)), nil, true); len(got) != 0 {
		t.Errorf("Keys(sizedOnly) with no sized server = %q, want none (no Capacity call)", got)
	}
}

func TestReadCapacities(t *testing.T) {
	one := memory.NewSized("memory.one", host("vm", 2000, gi))
	failing := memory.NewSized("memory.failing", providers.Capacity{})
	failing.SetCapacity(providers.Capacity{}, errors.New("backend gone"))
	plain := memory.New("memory.plain")
	get := func(key string) (providers.Provider, error) {
		switch key {
		case "memory.one":
			return one, nil
		case "memory.failing":
			return failing, nil
		case "memory.plain":
			return plain, nil
		}
		return nil, fmt.Errorf("no provider %s is declared", key)
	}
	caps, errs := ReadCapacities(context.Background(), []string{"memory.one", "memory.failing", "memory.plain", "docker.nowhere"}, get)
	if len(caps) != 1 || caps["memory.one"].Hosts[0].Name != "vm" {
		t.Errorf("capacities %+v", caps)
	}
	for key, want := range map[string]string{
		"memory.failing": "backend gone", "memory.plain": "cannot report its capacity (memory.plain)", "docker.nowhere": "no provider docker.nowhere",
	} {
		if err := errs[key]; err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error of %s: %v, want %q", key, err, want)
		}
	}
	if !errors.Is(errs["memory.plain"], ErrNoCapacity) {
		t.Errorf("a provider without capacity: %v is not ErrNoCapacity", errs["memory.plain"])
	}
	if n := one.CapacityCalls(); n != 1 {
		t.Errorf("memory.one was asked %d times, want once", n)
	}
}

func TestSampleUsage(t *testing.T) {
	ctx := context.Background()
	p := memory.NewSized("memory.local", host("vm", 4000, 8*gi))
	limited := srv("limited", "memory.local", 1, 2, 0, 500, 256*mi)
	free := srv("free", "memory.local", 5, 1, 0, 0, 0)
	other := srv("other", "memory.local", 9, 1, 0, 0, 0)
	other.Selector = map[string]string{"role": "edge"}
	cfg := config(0, limited, free, other)
	for _, s := range []*spec.Server{limited, free, other} {
		for i := range s.Replicas {
			d := &providers.Desired{Server: s, SpecHash: "h", Revision: "r", ManagedBy: "test"}
			if r := p.StartReplica(ctx, providers.StartRequest{Desired: d, Replica: i}); r.Err != nil {
				t.Fatal(r.Err)
			}
		}
	}
	// limited: 50% and 100% of its 500m limit; free: 25% of one core. The
	// second replica of limited has 10 MiB, the first 20.
	p.SetStats("limited", 0, providers.Stats{CPUPercent: 50, MemoryBytes: 20 * mi})
	p.SetStats("limited", 1, providers.Stats{CPUPercent: 100, MemoryBytes: 10 * mi})
	p.SetStats("free", 0, providers.Stats{CPUPercent: 25, MemoryBytes: 5 * mi})
	p.SetStats("other", 0, providers.Stats{CPUPercent: 25, MemoryBytes: 5 * mi})
	observed := map[string][]providers.Instance{"memory.local": p.Observe(ctx, providers.ObserveRequest{ManagedBy: "test"}).Instances}
	if got := CountReplicas(cfg, observed); got["limited"] != 2 || got["free"] != 1 || got["other"] != 1 {
		t.Errorf("CountReplicas = %v", got)
	}
	p.Crash("free", 0, 1) // not running: not sampled
	observed["memory.local"] = p.Observe(ctx, providers.ObserveRequest{ManagedBy: "test"}).Instances
	get := func(string) (providers.Provider, error) { return p, nil }
	notEdge := func(sel map[string]string) bool { return sel["role"] != "edge" }
	u := SampleUsage(ctx, cfg, notEdge, observed, get, 2)
	if got := u["limited"]; got.Now == nil || *got.Now != (Amount{750, 30 * mi}) || got.Replicas != 2 {
		t.Errorf("usage of limited: %+v, want 750m and 30 MiB over 2 replicas", got)
	}
	if _, ok := u["free"]; ok {
		t.Errorf("a crashed replica was sampled: %+v", u["free"])
	}
	if _, ok := u["other"]; ok {
		t.Errorf("a server of another host was sampled: %+v", u["other"])
	}
	// A replica the provider has no stats for is left out.
	p.SetStats("free", 0, providers.Stats{})
	if r := p.StartReplica(ctx, providers.StartRequest{Desired: &providers.Desired{Server: free, ManagedBy: "test"}, Replica: 0}); r.Err != nil {
		t.Fatal(r.Err)
	}
	if r := p.StartReplica(ctx, providers.StartRequest{Desired: &providers.Desired{Server: limited, ManagedBy: "test"}, Replica: 2}); r.Err != nil {
		t.Fatal(r.Err)
	}
	observed["memory.local"] = p.Observe(ctx, providers.ObserveRequest{ManagedBy: "test"}).Instances
	u = SampleUsage(ctx, cfg, nil, observed, get, 1)
	if got := u["limited"]; got.Replicas != 2 {
		t.Errorf("limited: %d replicas sampled, want the 2 with stats", got.Replicas)
	}
	if got := u["free"]; got.Now == nil || !got.Now.IsZero() || got.Replicas != 1 {
		t.Errorf("free: %+v, want one sample of nothing", got)
	}
}

func TestUsedAmount(t *testing.T) {
	withLimit := srv("a", "process.local", 1, 1, 0, 250, 0)
	noLimit := srv("b", "process.local", 1, 1, 0, 0, 64*mi)
	for _, tc := range []struct {
		s    *spec.Server
		st   providers.Stats
		want Amount
	}{
		{withLimit, providers.Stats{CPUPercent: 40, MemoryBytes: 7}, Amount{100, 7}},
		{noLimit, providers.Stats{CPUPercent: 150, MemoryBytes: 1 << 20}, Amount{1500, 1 << 20}},
		{noLimit, providers.Stats{CPUPercent: -3, MemoryBytes: -1}, Amount{}},
	} {
		if got := UsedAmount(tc.s, tc.st); got != tc.want {
			t.Errorf("UsedAmount(%s, %+v) = %+v, want %+v", tc.s.Name, tc.st, got, tc.want)
		}
	}
}
