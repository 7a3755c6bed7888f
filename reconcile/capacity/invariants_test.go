package capacity

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/tendhq/tend/providers"
	"github.com/tendhq/tend/spec"
)

// TestInvariants computes reports of random fleets, hostile figures
// included, and checks what must hold of any report: no panic, no server
// placed beyond what its host has, a host reported short exactly when a
// server of it would not fit, and a position on every finding about a
// server.
func TestInvariants(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	figure := func() int64 {
		switch rng.IntN(6) {
		case 0:
			return 0
		case 1:
			return -rng.Int64N(1000)
		case 2:
			return math.MaxInt64 - rng.Int64N(10)
		}
		return rng.Int64N(64 << 30)
	}
	for i := range 2000 {
		cfg := config(rng.IntN(3) * 150)
		keys := []string{"process.a", "process.b", "docker.c", "kubernetes.d", "systemd.e"}
		for j := range rng.IntN(8) {
			s := srv(fmt.Sprintf("s%d", j), keys[rng.IntN(len(keys))], j+1, rng.IntN(5)-1, rng.IntN(12)-1, figure(), figure())
			if rng.IntN(4) == 0 {
				s.Resources = &spec.Resources{MilliCPU: figure(), MemoryBytes: figure()}
			}
			cfg.Servers[s.Name] = s
		}
		caps := map[string]providers.Capacity{}
		for _, k := range keys {
			switch rng.IntN(4) {
			case 0:
			case 1:
				c := providers.Capacity{Cluster: true}
				for n := range rng.IntN(4) {
					c.Hosts = append(c.Hosts, providers.HostCapacity{Name: fmt.Sprint("n", n), MilliCPU: figure(), MemoryBytes: figure()})
				}
				caps[k] = c
			default:
				caps[k] = host([]string{"h1", "h2"}[rng.IntN(2)], figure(), figure())
			}
		}
		current := map[string]int{}
		for name := range cfg.Servers {
			current[name] = rng.IntN(4) - 1
		}
		r := Compute(Input{Config: cfg, Capacities: caps, Current: current})
		for _, h := range r.Hosts {
			var placed Amount
			short := false
			for _, s := range h.Servers {
				if s.Fits == nil {
					continue
				}
				if *s.Fits < 0 || *s.Fits > s.MaxReplicas {
					t.Fatalf("case %d: %s fits %d of %d", i, s.Name, *s.Fits, s.MaxReplicas)
				}
				placed = placed.Add(s.PerReplica.Times(*s.Fits))
				short = short || *s.Fits < s.MaxReplicas
			}
			if placed.Exceeds(h.Capacity) && !h.Cluster {
				t.Fatalf("case %d: host %s: %+v placed on %+v", i, h.Name, placed, h.Capacity)
			}
			if !h.Cluster && short != h.RequestedAtMax.Exceeds(h.Capacity) {
				t.Fatalf("case %d: host %s: a server short %v, requested %+v of %+v", i, h.Name, short, h.RequestedAtMax, h.Capacity)
			}
			if short != (len(h.WouldNotFit) > 0) {
				t.Fatalf("case %d: host %s: short %v, would not fit %q", i, h.Name, short, h.WouldNotFit)
			}
		}
		for _, f := range r.Findings {
			if f.Server != "" && f.Range == nil {
				t.Fatalf("case %d: finding %q about %s has no position", i, f.Summary, f.Server)
			}
		}
	}
}
