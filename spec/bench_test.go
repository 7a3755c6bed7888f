package spec_test

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/tendhq/tend/internal/fleetgen"
	"github.com/tendhq/tend/spec"
)

// BenchmarkLoad measures spec.Load (parse, evaluate, decode, validate) on
// generated repositories of 1,000 and 5,000 servers, and in the same run the
// raw hclparse parse of the same files. The load/parse metric is the ratio
// of the two; the target is at most 1.5.
func BenchmarkLoad(b *testing.B) {
	environ := map[string]string{"TEND_SECRET_API_TOKEN": "t0ken"}
	opts := spec.Options{
		Environ:     func(k string) (string, bool) { v, ok := environ[k]; return v, ok },
		TendVersion: "0.1.0",
	}
	for _, n := range []int{1000, 5000} {
		dir := b.TempDir()
		if err := fleetgen.Write(dir, n); err != nil {
			b.Fatal(err)
		}
		names, err := spec.FindFiles(dir)
		if err != nil {
			b.Fatal(err)
		}
		parse := func() {
			p := hclparse.NewParser()
			for _, name := range names {
				if _, diags := p.ParseHCLFile(filepath.Join(dir, name)); diags.HasErrors() {
					b.Fatal(diags.Error())
				}
			}
		}
		load := func() {
			cfg, _, diags := spec.Load(dir, opts)
			if diags.HasErrors() {
				b.Fatal(diags.Error())
			}
			if len(cfg.Servers) != n {
				b.Fatalf("loaded %d servers, want %d", len(cfg.Servers), n)
			}
		}
		b.Run(fmt.Sprintf("servers=%d/parse", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				parse()
			}
		})
		b.Run(fmt.Sprintf("servers=%d/load", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				load()
			}
		})
		// Both in one loop, alternating, so that the ratio is measured under
		// the same conditions.
		b.Run(fmt.Sprintf("servers=%d/ratio", n), func(b *testing.B) {
			var tp, tl time.Duration
			for b.Loop() {
				t0 := time.Now()
				parse()
				t1 := time.Now()
				load()
				tl += time.Since(t1)
				tp += t1.Sub(t0)
			}
			b.ReportMetric(float64(tl)/float64(tp), "load/parse")
			b.ReportMetric(float64(tp.Milliseconds())/float64(b.N), "parse-ms")
			b.ReportMetric(float64(tl.Milliseconds())/float64(b.N), "load-ms")
		})
	}
}
