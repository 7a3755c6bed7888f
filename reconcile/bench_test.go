package reconcile

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/tendhq/tend/internal/fleetgen"
	"github.com/tendhq/tend/internal/pgtest"
	"github.com/tendhq/tend/providers"
	"github.com/tendhq/tend/providers/memory"
	"github.com/tendhq/tend/reconcile/state"
	"github.com/tendhq/tend/spec"
)

func benchOpts() spec.Options {
	return spec.Options{Environ: func(k string) (string, bool) {
		if k == "TEND_SECRET_API_TOKEN" {
			return "t0ken", true
		}
		return "", false
	}}
}

// BenchmarkNoopPlan measures a whole plan of a fleet in which nothing
// changed: read and decode the repository, observe the in-memory provider
// in bulk, read the store (a real SQLite file), diff every server. In the
// same run it times the raw hclparse parse of the same files; the
// plan/parse metric is the ratio (target: at most 2).
func BenchmarkNoopPlan(b *testing.B) {
	for _, n := range []int{1000, 5000} {
		b.Run(fmt.Sprintf("servers=%d", n), func(b *testing.B) {
			dir := b.TempDir()
			if err := fleetgen.Write(dir, n); err != nil {
				b.Fatal(err)
			}
			eng, mem := benchEngine(b)
			src, _, diags := LoadSource(dir, benchOpts())
			if diags.HasErrors() {
				b.Fatal(diags.Error())
			}
			// Bring the fleet to the desired state, as a finished apply
			// would leave it, without timing it.
			seed(b, eng, mem, src)
			p, err := eng.Plan(context.Background(), src)
			if err != nil {
				b.Fatal(err)
			}
			if p.HasChanges() {
				b.Fatalf("the seeded fleet still plans changes: %+v", p.Changes[0])
			}
			names, _ := spec.FindFiles(dir)
			var tParse, tPlan time.Duration
			b.ResetTimer()
			for b.Loop() {
				t0 := time.Now()
				pp := hclparse.NewParser()
				for _, name := range names {
					if _, d := pp.ParseHCLFile(filepath.Join(dir, name)); d.HasErrors() {
						b.Fatal(d.Error())
					}
				}
				t1 := time.Now()
				src, _, diags := LoadSource(dir, benchOpts())
				if diags.HasErrors() {
					b.Fatal(diags.Error())
				}
				p, err := eng.Plan(context.Background(), src)
				if err != nil || p.HasChanges() {
					b.Fatalf("plan: %v", err)
				}
				tPlan += time.Since(t1)
				tParse += t1.Sub(t0)
			}
			b.ReportMetric(float64(tPlan)/float64(tParse), "plan/parse")
			b.ReportMetric(float64(tParse.Milliseconds())/float64(b.N), "parse-ms")
			b.ReportMetric(float64(tPlan.Milliseconds())/float64(b.N), "plan-ms")
		})
	}
}

func benchEngine(b *testing.B) (*Engine, *memory.Provider) {
	b.Helper()
	return benchEngineOn(b, filepath.Join(b.TempDir(), "state.db"))
}

// benchEngineOn is benchEngine on the store at path: a SQLite file or a
// PostgreSQL URL.
func benchEngineOn(b *testing.B, path string) (*Engine, *memory.Provider) {
	b.Helper()
	st, err := state.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	mem := memory.New("process.local")
	reg := providers.NewRegistry()
	reg.Add("process.local", mem)
	return &Engine{Store: st, Registry: reg, ManagedBy: "bench", Host: Host{Name: "h"}, LoadOptions: benchOpts()}, mem
}

// seed starts every replica and records a verified revision per server.
func seed(b *testing.B, e *Engine, mem *memory.Provider, src *Source) {
	b.Helper()
	for _, name := range src.Config.ServerNames() {
		s := src.Config.Servers[name]
		f := s.Fields()
		d := &providers.Desired{Server: s, SpecHash: spec.RuntimeHash(f), Revision: src.Revision, ManagedBy: e.ManagedBy}
		for i := 0; i < s.Replicas; i++ {
			mem.StartReplica(context.Background(), providers.StartRequest{Desired: d, Replica: i})
		}
		id, err := e.Store.BeginRevision(state.Revision{Server: name, SourceRevision: src.Revision, SpecHash: spec.FieldsHash(f), Version: s.Version, Spec: mustJSON(f), Trigger: "apply"})
		if err != nil {
			b.Fatal(err)
		}
		if err := e.Store.FinishRevision(id, state.OutcomeVerified, "seeded", time.Now()); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkApplyPerServer measures the engine's own cost per server in an
// apply: plan, lock, snapshot, revision records in SQLite, rollout and
// verification bookkeeping, with an in-memory provider (so no backend time
// is counted). The ms/server metric is the figure (target: under 2 ms).
func BenchmarkApplyPerServer(b *testing.B) {
	const n = 200
	var sb strings.Builder
	sb.WriteString("provider \"process\" \"local\" {}\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&sb, `
server "svc-%03d" {
  version  = "1.0.%d"
  command  = ["./svc"]
  replicas = 2
  port     = %d
  rollout {
    verify_for        = "0s"
    progress_deadline = "5s"
  }
}
`, i, i%10, 20000+i*4)
	}
	var total time.Duration
	for b.Loop() {
		b.StopTimer()
		dir := b.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(sb.String()), 0o644); err != nil {
			b.Fatal(err)
		}
		eng, _ := benchEngine(b)
		src, _, diags := LoadSource(dir, benchOpts())
		if diags.HasErrors() {
			b.Fatal(diags.Error())
		}
		b.StartTimer()
		t0 := time.Now()
		_, res, err := eng.ApplySource(context.Background(), src, nil)
		total += time.Since(t0)
		if err != nil || res.Failed() || len(res.Servers) != n {
			b.Fatalf("apply: %v %+v", err, res)
		}
	}
	b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N*n), "ms/server")
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// BenchmarkIdlePass measures one daemon pass when nothing changed (no new
// revision, no drift) over 100 servers: read the source, find the revision
// unchanged, take the lock, observe, read the store, plan. It reports the
// CPU time of the process per pass (target: under 20 ms), with the
// in-memory provider, on the SQLite store and on a PostgreSQL store on
// loopback; for PostgreSQL also the CPU time of the server's processes
// (pg-cpu-ms/pass), which a shared database spends for every tend.
func BenchmarkIdlePass(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) {
		eng, mem := benchEngine(b)
		benchIdlePass(b, eng, mem, nil)
	})
	b.Run("postgres", func(b *testing.B) {
		srv := pgtest.Start(b)
		eng, mem := benchEngineOn(b, pgtest.DSN(b))
		benchIdlePass(b, eng, mem, srv)
	})
}

func benchIdlePass(b *testing.B, eng *Engine, mem *memory.Provider, pg *pgtest.Server) {
	dir := b.TempDir()
	if err := fleetgen.Write(dir, 100); err != nil {
		b.Fatal(err)
	}
	src, _, diags := LoadSource(dir, benchOpts())
	if diags.HasErrors() {
		b.Fatal(diags.Error())
	}
	seed(b, eng, mem, src)
	loop := &Loop{Engine: eng, Fetcher: &DirFetcher{Dir: dir}, Poll: time.Hour}
	loop.init()
	ctx := context.Background()
	if r := loop.pass(ctx, "warm"); r != PassNoChange {
		b.Fatalf("first pass: %s", r)
	}
	cpu0 := cpuTime()
	var pg0 time.Duration
	if pg != nil {
		pg0 = pg.CPUTime()
	}
	b.ResetTimer()
	for b.Loop() {
		if r := loop.pass(ctx, "bench"); r != PassNoChange {
			b.Fatalf("idle pass: %s", r)
		}
	}
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/1000/float64(b.N), "cpu-ms/pass")
	if pg != nil {
		b.ReportMetric(float64((pg.CPUTime()-pg0).Microseconds())/1000/float64(b.N), "pg-cpu-ms/pass")
	}
}

// cpuTime is the user and system CPU time of this process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkAutoscalePass measures one pass of tend's autoscaler over 1,000
// servers of 3 replicas each on the in-memory provider: forget stale
// counts, read the recorded counts (SQLite), observe, sample every
// replica's Stats and decide. Its cpu-ms/pass metric is the process's CPU
// time per pass (target: under 10 ms).
func BenchmarkAutoscalePass(b *testing.B) {
	const n = 1000
	dir := b.TempDir()
	var sb strings.Builder
	sb.WriteString("provider \"process\" \"local\" {}\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&sb, "server \"s%04d\" {\n  version = \"1.0.0\"\n  command = [\"./s\"]\n  replicas = 3\n  scaling {\n    min = 1\n    max = 6\n    cpu_percent = 70\n  }\n}\n", i)
	}
	if err := os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(sb.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	eng, mem := benchEngine(b)
	src, _, diags := LoadSource(dir, benchOpts())
	if diags.HasErrors() {
		b.Fatal(diags.Error())
	}
	seed(b, eng, mem, src)
	for i := 0; i < n; i++ {
		for r := 0; r < 3; r++ {
			mem.SetStats(fmt.Sprintf("s%04d", i), r, providers.Stats{CPUPercent: float64(40 + (i+r)%60)})
		}
	}
	a := &Autoscaler{Engine: eng, ReadyAfter: time.Nanosecond}
	ctx := context.Background()
	sts, err := a.Evaluate(ctx, src)
	if err != nil || len(sts) != n {
		b.Fatalf("Evaluate: %d decisions, %v", len(sts), err)
	}
	for _, st := range sts {
		if len(st.Samples) != 3 {
			b.Fatalf("%s: %d samples, want 3", st.Server, len(st.Samples))
		}
	}
	b.ResetTimer()
	c0 := cpuTime()
	for i := 0; i < b.N; i++ {
		if _, err := a.Evaluate(ctx, src); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64((cpuTime()-c0).Microseconds())/1000/float64(b.N), "cpu-ms/pass")
}

// BenchmarkBumpPlan measures a plan in which every server's version
// changes (so every pin is checked) at 1,000, 5,000 and 10,000 servers: the
// time of BuildPlan alone, from what Engine.Plan reads. Its growth is the
// figure: the 10,000/1,000 ratio must stay under 12 (linear is 10). The
// three sizes are planned in turn in each iteration, so a ratio compares
// runs made under the same load on the machine; the metrics are the
// medians over the iterations (use -benchtime 5x or more).
func BenchmarkBumpPlan(b *testing.B) {
	sizes := []int{1000, 5000, 10000}
	inputs := make([]PlanInput, len(sizes))
	for k, n := range sizes {
		inputs[k] = bumpPlanInput(b, n)
	}
	times := make([][]time.Duration, len(sizes))
	b.ResetTimer()
	for b.Loop() {
		for k, in := range inputs {
			t0 := time.Now()
			if _, err := BuildPlan(in); err != nil {
				b.Fatal(err)
			}
			times[k] = append(times[k], time.Since(t0))
		}
	}
	b.StopTimer()
	med := make([]float64, len(sizes))
	for k, n := range sizes {
		med[k] = float64(median(times[k]).Microseconds()) / 1000
		b.ReportMetric(med[k], fmt.Sprintf("ms@%d", n))
	}
	b.ReportMetric(med[2]/med[0], "ratio-10k/1k")
}

// bumpPlanInput is the input of a plan of n servers, every one of them at
// a new version.
func bumpPlanInput(b *testing.B, n int) PlanInput {
	eng, mem := benchEngine(b)
	old, _, diags := NewSource("fleet", "old", fleetgen.Files(n), benchOpts())
	if diags.HasErrors() {
		b.Fatal(diags.Error())
	}
	seed(b, eng, mem, old)
	bumped := fleetgen.Files(n)
	for name, content := range bumped {
		bumped[name] = []byte(strings.ReplaceAll(string(content), `version  = "1.`, `version  = "1.1`))
	}
	src, _, diags := NewSource("fleet", "new", bumped, benchOpts())
	if diags.HasErrors() {
		b.Fatal(diags.Error())
	}
	observed, err := eng.Observe(context.Background(), src.Config)
	if err != nil {
		b.Fatal(err)
	}
	latest, holds, err := eng.records()
	if err != nil {
		b.Fatal(err)
	}
	in := PlanInput{Config: src.Config, SourceRevision: src.Revision, ManagedBy: eng.ManagedBy, Host: eng.Host,
		Observed: observed, Latest: latest, Holds: holds, Now: time.Now()}
	p, err := BuildPlan(in)
	if err != nil {
		b.Fatal(err)
	}
	if c := p.Change("svc-00001"); c == nil || c.Action != ActionUpdate || c.FromVersion == c.ToVersion {
		b.Fatalf("svc-00001 is not bumped: %+v", c)
	}
	return in
}

// median is the middle of a set of durations (it sorts them).
func median(d []time.Duration) time.Duration {
	slices.Sort(d)
	return d[len(d)/2]
}
