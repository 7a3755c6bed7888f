package spec_test

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"
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

// BenchmarkReload measures what the daemon does on a new revision that
// changes one file of a 5,000-server repository (a version bump of one
// server): a load with the Cache of the previous revision's load, against
// a full load of the same files, alternating in one loop so that both are
// measured under the same conditions. The reload/load metric is the ratio;
// the target is under 0.2.
func BenchmarkReload(b *testing.B) {
	environ := map[string]string{"TEND_SECRET_API_TOKEN": "t0ken"}
	opts := spec.Options{
		Environ:     func(k string) (string, bool) { v, ok := environ[k]; return v, ok },
		TendVersion: "0.1.0",
		Strict:      true,
	}
	const n = 5000
	files := fleetgen.Files(n)
	const changed = "servers/group-0042.hcl"
	revs := [2][]byte{files[changed], []byte(strings.Replace(string(files[changed]), `version  = "1.0.0"`, `version  = "1.0.1"`, 1))}
	if bytes.Equal(revs[0], revs[1]) {
		b.Fatal("the edit changed nothing")
	}
	load := func(l *spec.Loader) {
		cfg, diags := l.LoadFiles("repo", files)
		if diags.HasErrors() {
			b.Fatal(diags.Error())
		}
		if len(cfg.Servers) != n {
			b.Fatalf("loaded %d servers, want %d", len(cfg.Servers), n)
		}
	}
	cached := spec.NewLoader(opts).WithCache(spec.NewCache())
	load(cached)
	var tl, tr time.Duration
	i := 0
	for b.Loop() {
		i++
		files[changed] = revs[i%2]
		t0 := time.Now()
		load(cached)
		t1 := time.Now()
		if st := cached.Stats(); st.Parsed != 2 || st.Reused != st.Files-2 {
			b.Fatalf("the reload parsed %d files and reused %d of %d", st.Parsed, st.Reused, st.Files)
		}
		load(spec.NewLoader(opts))
		tl += time.Since(t1)
		tr += t1.Sub(t0)
	}
	b.ReportMetric(float64(tr)/float64(tl), "reload/load")
	b.ReportMetric(float64(tr.Microseconds())/1000/float64(b.N), "reload-ms")
	b.ReportMetric(float64(tl.Microseconds())/1000/float64(b.N), "load-ms")
}
