package null

import (
	"context"
	"fmt"
	"testing"

	"github.com/tendhq/tend/providers"
)

// BenchmarkApply records a fleet of 10,000 servers of 2 replicas, one
// replica at a time as an apply does (what one op is), then observes it
// from a new provider (a second tend process: one read of the files).
func BenchmarkApply(b *testing.B) {
	const servers = 10000
	ds := make([]*providers.Desired, servers)
	for i := range ds {
		ds[i] = desired(fmt.Sprintf("svc-%05d", i), "1.0.0", 2)
	}
	for b.Loop() {
		dir := b.TempDir()
		p := newTestProvider(b, dir, "bench")
		for _, d := range ds {
			start(b, p, d, 0, 1)
		}
		fresh := newTestProvider(b, dir, "bench")
		if n := len(observe(b, fresh, "tend", "")); n != 2*servers {
			b.Fatalf("observed %d replicas, want %d", n, 2*servers)
		}
		b.ReportMetric(float64(p.st.snapshots), "snapshots")
	}
}

// BenchmarkObserveFresh is one Observe of 20,000 records by a new provider:
// what a new tend process pays to read them.
func BenchmarkObserveFresh(b *testing.B) {
	dir := b.TempDir()
	p := newTestProvider(b, dir, "bench")
	for i := range 10000 {
		start(b, p, desired(fmt.Sprintf("svc-%05d", i), "1.0.0", 2), 0, 1)
	}
	for b.Loop() {
		fresh := newTestProvider(b, dir, "bench")
		if n := len(observe(b, fresh, "tend", "")); n != 20000 {
			b.Fatalf("observed %d", n)
		}
		fresh.Close()
	}
}

// BenchmarkObserveServer is one Observe of one server of 10,000 when the
// files did not change (what each verification tick costs).
func BenchmarkObserveServer(b *testing.B) {
	p := newTestProvider(b, b.TempDir(), "bench")
	for i := range 10000 {
		start(b, p, desired(fmt.Sprintf("svc-%05d", i), "1.0.0", 2), 0, 1)
	}
	ctx := context.Background()
	for b.Loop() {
		if res := p.Observe(ctx, providers.ObserveRequest{ManagedBy: "tend", Server: "svc-04321"}); len(res.Instances) != 2 {
			b.Fatalf("observed %d", len(res.Instances))
		}
	}
}
