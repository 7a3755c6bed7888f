package autoscale

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/tendhq/tend/providers"
	"github.com/tendhq/tend/providers/memory"
	"github.com/tendhq/tend/spec"
)

// BenchmarkPass is one autoscaler pass over 1,000 servers of 3 replicas:
// for each server, Sample (stats from the in-memory provider, cpu_percent
// = 70, no metric block) then Decide. The budget is 10ms of CPU a pass.
func BenchmarkPass(b *testing.B) {
	const servers, replicas = 1000, 3
	mem := memory.New("memory.bench")
	srvs := make([]*spec.Server, servers)
	insts := make([][]providers.Instance, servers)
	for i := range servers {
		name := fmt.Sprintf("web-%04d", i)
		srvs[i] = &spec.Server{Name: name, Replicas: replicas, Scaling: &spec.Scaling{
			Min: 1, Max: 10, CPUPercent: 70, ScaleDownWindow: 5 * time.Minute,
		}}
		for r := range replicas {
			insts[i] = append(insts[i], providers.Instance{
				Identity: providers.Identity{Server: name, Replica: r},
				State:    providers.StateRunning, Host: "127.0.0.1", StartedAt: t0.Add(-time.Hour),
			})
			mem.SetStats(name, r, providers.Stats{CPUPercent: float64(40 + (i+r)%60)})
		}
	}
	now := t0
	s := &Sampler{Stats: mem, ReadyAfter: 30 * time.Second, Now: func() time.Time { return now }}
	rec := NewRecommender()
	ctx := context.Background()
	changes := 0
	b.ReportAllocs()
	for b.Loop() {
		now = now.Add(15 * time.Second)
		for i, srv := range srvs {
			samples := s.Sample(ctx, srv, insts[i])
			d := rec.Decide(Input{
				Server: srv.Name, Min: srv.Scaling.Min, Max: srv.Scaling.Max, Current: srv.Replicas,
				Targets: Targets(srv.Scaling), Samples: samples,
				UpWindow: srv.Scaling.ScaleUpWindow, DownWindow: srv.Scaling.ScaleDownWindow, Now: now,
			})
			if d.Changes() {
				changes++
			}
		}
	}
	if changes == 0 {
		b.Fatal("no decision changed a count: the benchmark measures nothing")
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/servers, "ns/server")
}

// BenchmarkDecide is one decision on three replicas and two metrics, with
// a history of 20 asks.
func BenchmarkDecide(b *testing.B) {
	rec := NewRecommender()
	in := Input{
		Server: "web", Min: 1, Max: 10, Current: 3,
		Targets:  []Target{{CPU, 70}, {"qps", 100}},
		Samples:  merge(on(CPU, 90, idle, 80), on("qps", 120, idle, gone)),
		UpWindow: time.Minute, DownWindow: 5 * time.Minute,
	}
	now := t0
	b.ReportAllocs()
	for b.Loop() {
		now = now.Add(15 * time.Second)
		in.Now = now
		_ = rec.Decide(in)
	}
}
