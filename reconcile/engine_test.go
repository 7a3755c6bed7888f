package reconcile

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/tendhq/tend/providers"
	"github.com/tendhq/tend/providers/memory"
	"github.com/tendhq/tend/reconcile/state"
	"github.com/tendhq/tend/spec"
)

// fleet is a repository of two servers on an in-memory provider: api
// depends on db and pins it. Verification has no checks, so it only needs
// the replicas to stay up (the memory provider fails a version on demand).
const fleet = `
provider "process" "mem" {}

variable "db_version" {
  default = "3.0.0"
}

variable "api_version" {
  default = "1.0.0"
}

server "db" {
  version  = var.db_version
  command  = ["./db"]
  port     = 5432
  rollout {
    verify_for        = "0s"
    progress_deadline = "2s"
  }
}

server "api" {
  version    = var.api_version
  command    = ["./api"]
  replicas   = 3
  port       = 8000
  depends_on = [server.db]
  requires "db" {
    version = ">= 3.0, < 4.0"
  }
  env = {
    TOKEN = secret("api_token")
  }
  rollout {
    strategy          = "rolling"
    max_unavailable   = 1
    verify_for        = "0s"
    progress_deadline = "2s"
  }
}
`

type harness struct {
	t    *testing.T
	dir  string
	mem  *memory.Provider
	eng  *Engine
	vars map[string]string
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(fleet), 0o644); err != nil {
		t.Fatal(err)
	}
	st, err := state.Open(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	mem := memory.New("process.mem")
	reg := providers.NewRegistry()
	reg.Add("process.mem", mem)
	h := &harness{t: t, dir: dir, mem: mem, vars: map[string]string{}}
	h.eng = &Engine{Store: st, Registry: reg, ManagedBy: "test", Host: Host{Name: "h1"}, LoadOptions: h.opts()}
	return h
}

func (h *harness) opts() spec.Options {
	environ := map[string]string{"TEND_SECRET_API_TOKEN": "tok-very-secret"}
	return spec.Options{
		Strict: true, Vars: h.vars,
		Environ: func(k string) (string, bool) { v, ok := environ[k]; return v, ok },
	}
}

func (h *harness) source() *Source {
	h.t.Helper()
	src, _, diags := LoadSource(h.dir, h.opts())
	if diags.HasErrors() {
		h.t.Fatal(diags.Error())
	}
	return src
}

func (h *harness) plan() *Plan {
	h.t.Helper()
	p, err := h.eng.Plan(context.Background(), h.source())
	if err != nil {
		h.t.Fatal(err)
	}
	return p
}

func (h *harness) apply() (*Plan, *ApplyResult) {
	h.t.Helper()
	h.eng.LoadOptions = h.opts()
	p, res, err := h.eng.ApplySource(context.Background(), h.source(), nil)
	if err != nil {
		h.t.Fatal(err)
	}
	return p, res
}

func outcome(res *ApplyResult, server string) string {
	for _, s := range res.Servers {
		if s.Server == server {
			return s.Outcome
		}
	}
	return ""
}

func TestEngineLifecycle(t *testing.T) {
	h := newHarness(t)

	// Create: db in wave 1, api in wave 2.
	p := h.plan()
	if c := p.Change("db"); c.Action != ActionCreate || c.Wave != 1 {
		t.Fatalf("db: %+v", c)
	}
	if c := p.Change("api"); c.Action != ActionCreate || c.Wave != 2 || len(c.Start) != 3 {
		t.Fatalf("api: %+v", c)
	}
	_, res := h.apply()
	if outcome(res, "db") != ResultVerified || outcome(res, "api") != ResultVerified {
		t.Fatalf("first apply: %+v", res.Servers)
	}
	if got := h.mem.Servers(); strings.Join(got, ",") != "api,db" {
		t.Fatalf("running servers: %v", got)
	}

	// Nothing changed: a no-op plan.
	if p := h.plan(); p.HasChanges() {
		t.Fatalf("second plan has changes: %+v", p.Changes)
	}

	// An upgrade rolls the three replicas.
	h.vars["api_version"] = "1.1.0"
	p = h.plan()
	c := p.Change("api")
	if c.Action != ActionUpdate || c.Reasons[0] != "version 1.0.0 → 1.1.0" || len(c.Start) != 3 {
		t.Fatalf("upgrade plan: %+v", c)
	}
	starts := h.mem.Starts
	_, res = h.apply()
	if outcome(res, "api") != ResultVerified || h.mem.Starts-starts != 3 {
		t.Fatalf("upgrade: %+v, %d starts", res.Servers, h.mem.Starts-starts)
	}

	// A broken release fails, rolls back to 1.1.0 by itself, and is held.
	h.mem.FailVersion["api@1.2.0"] = true
	h.vars["api_version"] = "1.2.0"
	_, res = h.apply()
	if outcome(res, "api") != ResultRolledBack {
		t.Fatalf("broken release: %+v", res.Servers)
	}
	obs := h.mem.Observe(context.Background(), providers.ObserveRequest{ManagedBy: "test"})
	for _, in := range obs.Instances {
		if in.Server == "api" && in.Version != "1.1.0" {
			t.Fatalf("after rollback replica %d runs %s", in.Replica, in.Version)
		}
	}
	// The held revision is not applied again.
	p = h.plan()
	if c := p.Change("api"); c.Action != ActionHeld || !strings.Contains(c.Reasons[0], "tend retry api") {
		t.Fatalf("plan after rollback: %+v", c)
	}
	if p.HasChanges() {
		t.Fatalf("a held revision still plans changes")
	}
	hist, _ := h.eng.Store.History("api", 0)
	if len(hist) < 4 || hist[0].Trigger != "auto-rollback" || hist[0].Outcome != state.OutcomeVerified || hist[1].Outcome != state.OutcomeRolledBack {
		t.Fatalf("history: %+v", hist)
	}

	// A fix (a new desired state) is picked up at once.
	h.mem.FailVersion["api@1.2.1"] = false
	h.vars["api_version"] = "1.2.1"
	if c := h.plan().Change("api"); c.Action != ActionUpdate {
		t.Fatalf("fix plan: %+v", c)
	}

	// Retry releases the hold of 1.2.0.
	h.vars["api_version"] = "1.2.0"
	if n, err := h.eng.Retry("api"); err != nil || n != 1 {
		t.Fatalf("retry: %d, %v", n, err)
	}
	if c := h.plan().Change("api"); c.Action != ActionUpdate {
		t.Fatalf("plan after retry: %+v", c)
	}
}

func TestEngineBlocksDependents(t *testing.T) {
	h := newHarness(t)
	h.apply()
	// db 3.1.0 is broken; api 1.1.0 in the same apply depends on it.
	h.mem.FailVersion["db@3.1.0"] = true
	h.vars["db_version"] = "3.1.0"
	h.vars["api_version"] = "1.1.0"
	_, res := h.apply()
	if outcome(res, "db") != ResultRolledBack || outcome(res, "api") != ResultBlocked {
		t.Fatalf("outcomes: %+v", res.Servers)
	}
	// Next plan: db held, api blocked by it.
	p := h.plan()
	if p.Change("db").Action != ActionHeld || p.Change("api").Action != ActionBlocked {
		t.Fatalf("plan: db %s, api %s", p.Change("db").Action, p.Change("api").Action)
	}
}

func TestEngineHealsCrashAndDrift(t *testing.T) {
	h := newHarness(t)
	h.apply()
	h.mem.Crash("api", 1, 137)
	h.mem.Tamper("api", 2, "config file config.yaml was changed by hand")
	c := h.plan().Change("api")
	if c.Action != ActionHeal || len(c.Start) != 2 {
		t.Fatalf("heal plan: %+v", c)
	}
	if !strings.Contains(strings.Join(c.Reasons, "\n"), "replica 1 exited (exit code 137)") {
		t.Fatalf("reasons: %v", c.Reasons)
	}
	_, res := h.apply()
	if outcome(res, "api") != ResultVerified || h.plan().HasChanges() {
		t.Fatalf("after heal: %+v", res.Servers)
	}
}

func TestEngineSecretsNeverInPlan(t *testing.T) {
	h := newHarness(t)
	h.apply()
	p := h.plan()
	var sb strings.Builder
	RenderPlan(&sb, p, false)
	if strings.Contains(sb.String(), "tok-very-secret") {
		t.Fatal("the plan shows the secret")
	}
	hist, _ := h.eng.Store.History("", 0)
	for _, r := range hist {
		if strings.Contains(string(r.Spec), "tok-very-secret") {
			t.Fatalf("revision %d stores the secret", r.ID)
		}
	}
}

func TestEngineStalePlanAndLock(t *testing.T) {
	h := newHarness(t)
	saved := h.plan()
	// The world moves: someone applies first.
	h.apply()
	_, _, err := h.eng.ApplySource(context.Background(), h.source(), saved)
	var stale *StalePlanError
	if !errors.As(err, &stale) {
		t.Fatalf("applying a stale plan: %v", err)
	}
	if !strings.Contains(err.Error(), "db: planned to create, now it would no-op") {
		t.Errorf("stale reasons: %v", err)
	}

	// A second tend cannot apply while the first holds the lock.
	release, err := h.eng.Lock("apply")
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	other, err := state.Open(h.eng.Store.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	e2 := &Engine{Store: other, Registry: h.eng.Registry, ManagedBy: "test", Host: h.eng.Host, LoadOptions: h.opts()}
	_, _, err = e2.ApplySource(context.Background(), h.source(), nil)
	var locked *state.LockedError
	if !errors.As(err, &locked) {
		t.Fatalf("second apply: %v", err)
	}
}

func TestEngineManualRollbackIsHeld(t *testing.T) {
	h := newHarness(t)
	h.apply()
	h.vars["api_version"] = "1.1.0"
	h.apply()
	release, err := h.eng.Lock("rollback")
	if err != nil {
		t.Fatal(err)
	}
	target, _, err := h.eng.Rollback(context.Background(), h.dir, "api", 0, "")
	release()
	if err != nil {
		t.Fatal(err)
	}
	if target.Version != "1.0.0" {
		t.Fatalf("rolled back to %s", target.Version)
	}
	// The sync does not undo the rollback.
	c := h.plan().Change("api")
	if c.Action != ActionHeld || !strings.Contains(c.Reasons[0], fmt.Sprintf("was rolled back by hand to revision %d at ", target.ID)) {
		t.Fatalf("plan after manual rollback: %+v", c)
	}
	if strings.Contains(c.Reasons[0], "failed verification") {
		t.Errorf("the plan says a revision rolled back by hand failed verification: %q", c.Reasons[0])
	}
}

func TestEngineHooks(t *testing.T) {
	h := newHarness(t)
	h.apply()
	// A failing migrate hook stops the change before any replica changes.
	src := strings.Replace(fleet, `  rollout {
    strategy          = "rolling"`, `  hooks {
    migrate = ["migrate", "--up"]
  }
  rollout {
    strategy          = "rolling"`, 1)
	if err := os.WriteFile(filepath.Join(h.dir, "main.hcl"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	h.vars["api_version"] = "1.1.0"
	h.mem.ExecExit["migrate"] = 2
	h.mem.ExecOutput["migrate"] = "connecting with token tok-very-secret: permission denied"
	_, res := h.apply()
	if outcome(res, "api") != ResultFailed && outcome(res, "api") != ResultRolledBack {
		t.Fatalf("failing hook: %+v", res.Servers)
	}
	if !strings.Contains(res.Servers[0].Message, "the migrate hook failed, so no replica was changed: exit code 2: connecting with token (sensitive): permission denied") {
		t.Errorf("message: %q", res.Servers[0].Message)
	}
	hist, _ := h.eng.Store.History("api", 0)
	for _, r := range hist {
		if strings.Contains(r.Message, "tok-very-secret") {
			t.Errorf("revision %d records the secret from the hook's output", r.ID)
		}
	}
	obs := h.mem.Observe(context.Background(), providers.ObserveRequest{ManagedBy: "test", Server: "api"})
	for _, in := range obs.Instances {
		if in.Version != "1.0.0" {
			t.Errorf("replica %d runs %s after a failed hook", in.Replica, in.Version)
		}
	}

	// With the hook passing, the change goes through.
	h.mem.ExecExit["migrate"] = 0
	h.vars["api_version"] = "1.1.1"
	_, res = h.apply()
	if outcome(res, "api") != ResultVerified {
		t.Fatalf("passing hook: %+v", res.Servers)
	}
}

func TestEngineProviderErrorMidWave(t *testing.T) {
	// Three independent servers and one that depends on the failing one.
	src := `
provider "process" "mem" {}
server "a" {
  version = "1.0.0"
  command = ["./a"]
  port    = 7000
  rollout {
    verify_for        = "0s"
    progress_deadline = "2s"
  }
}
server "b" {
  version = "1.0.0"
  command = ["./b"]
  port    = 7100
  rollout {
    verify_for        = "0s"
    progress_deadline = "2s"
  }
}
server "c" {
  version    = "1.0.0"
  command    = ["./c"]
  port       = 7200
  depends_on = [server.b]
  rollout {
    verify_for        = "0s"
    progress_deadline = "2s"
  }
}
`
	h := newHarness(t)
	if err := os.WriteFile(filepath.Join(h.dir, "main.hcl"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	h.mem.StartError["b"] = errors.New("the backend refused: out of ports")
	_, res := h.apply()
	if outcome(res, "a") != ResultVerified || outcome(res, "b") != ResultFailed || outcome(res, "c") != ResultBlocked {
		t.Fatalf("outcomes: %+v", res.Servers)
	}
	for _, s := range res.Servers {
		if s.Server == "b" && !strings.Contains(s.Message, "starting replica 0: the backend refused: out of ports") {
			t.Errorf("b's message: %q", s.Message)
		}
	}
	// A backend failure is not the change's fault: b is not held, and the
	// next apply, once the backend recovers, converges without a retry.
	if c := h.plan().Change("b"); c.Action != ActionCreate {
		t.Fatalf("b after a provider error: %+v", c)
	}
	delete(h.mem.StartError, "b")
	_, res = h.apply()
	if outcome(res, "b") != ResultVerified || outcome(res, "c") != ResultVerified {
		t.Fatalf("after recovery: %+v", res.Servers)
	}
	if h.plan().HasChanges() {
		t.Fatal("the fleet did not converge")
	}
}

func TestEngineCanaryAndRecreate(t *testing.T) {
	src := `
provider "process" "mem" {}
server "web" {
  version  = var.v
  command  = ["./web"]
  replicas = 4
  port     = 9000
  rollout {
    strategy          = var.strategy
    canary_steps      = var.strategy == "canary" ? [1, "50%"] : null
    verify_for        = "0s"
    progress_deadline = "2s"
  }
}
variable "v" {
  default = "1.0.0"
}
variable "strategy" {
  default = "canary"
}
`
	h := newHarness(t)
	if err := os.WriteFile(filepath.Join(h.dir, "main.hcl"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	var progress strings.Builder
	h.eng.Progress = &progress
	h.apply()

	// A canary that works: 1 replica, then half, then the rest.
	h.vars["v"] = "1.1.0"
	progress.Reset()
	_, res := h.apply()
	if outcome(res, "web") != ResultVerified {
		t.Fatalf("canary: %+v", res.Servers)
	}
	for _, want := range []string{"canary: 1 of 4 replicas on 1.1.0", "canary: 2 of 4 replicas on 1.1.0", "canary: 4 of 4 replicas on 1.1.0"} {
		if !strings.Contains(progress.String(), want) {
			t.Errorf("progress lacks %q:\n%s", want, progress.String())
		}
	}

	// A canary that fails touches one replica, and only that one is restored.
	h.mem.FailVersion["web@1.2.0"] = true
	h.vars["v"] = "1.2.0"
	starts := h.mem.Starts
	_, res = h.apply()
	if outcome(res, "web") != ResultRolledBack {
		t.Fatalf("failed canary: %+v", res.Servers)
	}
	if got := h.mem.Starts - starts; got != 2 {
		t.Errorf("a failed canary started %d replicas, want 2 (the canary, then its restore)", got)
	}

	// Recreate stops every replica, then starts the new ones.
	h.vars["strategy"] = "recreate"
	h.vars["v"] = "1.3.0"
	p := h.plan()
	if c := p.Change("web"); c.Action != ActionReplace || len(c.Stop) != 4 || len(c.Start) != 4 {
		t.Fatalf("recreate plan: %+v", c)
	}
	stops := h.mem.Stops
	_, res = h.apply()
	if outcome(res, "web") != ResultVerified || h.mem.Stops-stops != 4 {
		t.Fatalf("recreate: %+v, %d stops", res.Servers, h.mem.Stops-stops)
	}
}

// A targeted plan covers the targets and their dependencies, asks only
// their providers, and prunes nothing.
func TestEngineTargets(t *testing.T) {
	h := newHarness(t)
	// A server on a provider this registry cannot build: a plan of the
	// whole fleet fails on it, a plan targeted elsewhere does not ask it.
	extra := `
provider "docker" "far" {}
server "edge" {
  provider = provider.docker.far
  version  = "1.0.0"
  image    = "edge:1.0.0"
  port     = 9000
}
`
	if err := os.WriteFile(filepath.Join(h.dir, "edge.hcl"), []byte(extra), 0o644); err != nil {
		t.Fatal(err)
	}
	main := strings.NewReplacer(`server "db" {`, `server "db" {
  provider = provider.process.mem`, `server "api" {`, `server "api" {
  provider = provider.process.mem`).Replace(fleet)
	if err := os.WriteFile(filepath.Join(h.dir, "main.hcl"), []byte(main), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := h.eng.Plan(context.Background(), h.source()); err == nil || !strings.Contains(err.Error(), "docker provider is not available") {
		t.Fatalf("whole plan with an unavailable provider: %v", err)
	}
	// An orphan of an earlier desired state.
	old := &providers.Desired{Server: &spec.Server{Name: "old", Version: "0.1.0", Replicas: 1}, SpecHash: "h", ManagedBy: "test"}
	if r := h.mem.StartReplica(context.Background(), providers.StartRequest{Desired: old}); r.Err != nil {
		t.Fatal(r.Err)
	}

	h.eng.Targets = []string{"api"}
	p := h.plan()
	if strings.Join(p.Targets, ",") != "api,db" {
		t.Fatalf("targets %q, want api and its dependency db", p.Targets)
	}
	var got []string
	for _, c := range p.Changes {
		got = append(got, c.Server+":"+string(c.Action))
	}
	if strings.Join(got, " ") != "db:create api:create" {
		t.Fatalf("targeted plan changes %q, want api and db created, and no delete of old", got)
	}
	_, res := h.apply()
	if outcome(res, "api") != ResultVerified || outcome(res, "db") != ResultVerified {
		t.Fatalf("targeted apply: %+v", res.Servers)
	}
	if insts := h.mem.Observe(context.Background(), providers.ObserveRequest{ManagedBy: "test", Server: "old"}).Instances; len(insts) != 1 {
		t.Fatalf("a targeted apply pruned the orphan: %d instances of old left", len(insts))
	}

	h.eng.Targets = []string{"nope"}
	if _, err := h.eng.Plan(context.Background(), h.source()); err == nil || !strings.Contains(err.Error(), `no server "nope"`) {
		t.Fatalf("unknown target: %v", err)
	}
}

// Checks that fail while the provider cannot be observed (a Docker Engine
// restarting) are the provider's failure: the change is not held and not
// rolled back, and the next apply converges.
func TestEngineOutageDuringVerificationIsNotHeld(t *testing.T) {
	src := `
provider "process" "mem" {}
server "a" {
  version = "1.0.0"
  command = ["./a"]
  port    = 7000
  check "up" {
    tcp {}
    interval          = "50ms"
    timeout           = "50ms"
    failure_threshold = 1
  }
  rollout {
    verify_for        = "0s"
    progress_deadline = "1s"
  }
}
`
	h := newHarness(t)
	if err := os.WriteFile(filepath.Join(h.dir, "main.hcl"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	// Nothing listens on 7000 (the memory provider starts nothing), so
	// the check fails; the backend is unreachable after the first look.
	// ObserveErr runs under the provider's lock, so it may read Starts.
	var mu sync.Mutex
	failing, sinceStart := true, 0
	h.mem.ObserveErr = func(int) error {
		mu.Lock()
		defer mu.Unlock()
		if h.mem.Starts > 0 {
			sinceStart++
		}
		if failing && sinceStart > 1 {
			return errors.New("cannot connect to the backend")
		}
		return nil
	}
	_, res := h.apply()
	var msg string
	for _, s := range res.Servers {
		msg = s.Message
	}
	if outcome(res, "a") != ResultFailed || !strings.Contains(msg, "while the provider could not be reached (cannot connect to the backend)") {
		t.Fatalf("outcome %s: %s", outcome(res, "a"), msg)
	}
	mu.Lock()
	failing = false
	mu.Unlock()
	if c := h.plan().Change("a"); c.Action == ActionHeld {
		t.Fatalf("a change whose checks failed during a backend outage is held: %v", c.Reasons)
	}
}

// A change of settings only restarts nothing, and reaches a provider whose
// objects hold settings (providers.SettingsApplier).
func TestEngineSettingsOnlyChange(t *testing.T) {
	h := newHarness(t)
	h.apply()
	starts := h.mem.Starts
	main := strings.Replace(fleet, `    verify_for        = "0s"
    progress_deadline = "2s"
  }
}
`, `    verify_for        = "0s"
    progress_deadline = "3s"
  }
}
`, 1)
	if main == fleet {
		t.Fatal("the fleet's text changed; this test must edit a setting of db")
	}
	if err := os.WriteFile(filepath.Join(h.dir, "main.hcl"), []byte(main), 0o644); err != nil {
		t.Fatal(err)
	}
	p, res := h.apply()
	if c := p.Change("db"); c.Action != ActionUpdate || c.Rollout {
		t.Fatalf("db: %s (rollout %v), want a settings update", c.Action, c.Rollout)
	}
	if outcome(res, "db") != ResultVerified {
		t.Fatalf("outcomes: %+v", res.Servers)
	}
	if h.mem.Starts != starts {
		t.Errorf("a settings change started %d replicas", h.mem.Starts-starts)
	}
	if got := strings.Join(h.mem.Settings, ","); got != "db@3.0.0" {
		t.Errorf("settings applied: %q, want db@3.0.0", got)
	}
}

// TestPruneGuardHoldsForEveryCommand: tend { prune = false } and
// max_prune_percent are the plan's, so tend apply holds them as tend run
// does; --allow-prune (AllowPrune) lifts the percentage, not prune = false.
func TestPruneGuardHoldsForEveryCommand(t *testing.T) {
	h := newHarness(t)
	if _, res := h.apply(); outcome(res, "api") != ResultVerified {
		t.Fatalf("first apply: %+v", res.Servers)
	}
	write := func(text string) {
		if err := os.WriteFile(filepath.Join(h.dir, "main.hcl"), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// An empty repository would delete every server.
	write("provider \"process\" \"mem\" {}\n")
	p, res := h.apply()
	if !strings.Contains(p.PruneRefused, "would delete every server (2)") || len(res.Servers) != 0 {
		t.Fatalf("delete-all: refused %q, results %+v", p.PruneRefused, res.Servers)
	}
	if got := h.mem.Servers(); len(got) != 2 {
		t.Fatalf("servers after a refused delete-all: %v", got)
	}
	if c := p.Change("api"); c.Action != ActionKept || !strings.Contains(strings.Join(c.Reasons, ";"), "not deleted: ") || p.HasChanges() {
		t.Fatalf("api: %+v", c)
	}
	// prune = false keeps them even with --allow-prune.
	write("tend {\n  prune = false\n}\nprovider \"process\" \"mem\" {}\nserver \"db\" {\n  version = \"3.0.0\"\n  command = [\"./db\"]\n  port = 5432\n  rollout {\n    verify_for = \"0s\"\n  }\n}\n")
	h.eng.AllowPrune = true
	p, res = h.apply()
	if !strings.Contains(p.PruneRefused, "tend { prune = false }") || p.Change("api").Action != ActionKept || outcome(res, "api") != ResultKept {
		t.Fatalf("prune = false: refused %q, results %+v", p.PruneRefused, res.Servers)
	}
	if got := h.mem.Servers(); len(got) != 2 {
		t.Fatalf("servers with prune = false: %v", got)
	}
	// --allow-prune lets the delete-all go.
	write("provider \"process\" \"mem\" {}\n")
	if p, res = h.apply(); p.PruneRefused != "" || outcome(res, "api") != ResultDeleted {
		t.Fatalf("--allow-prune: refused %q, results %+v", p.PruneRefused, res.Servers)
	}
	if got := h.mem.Servers(); len(got) != 0 {
		t.Fatalf("servers after --allow-prune: %v", got)
	}
}

// TestHoldLastsUntilTheDesiredStateChanges: a held revision is held until
// another desired state is verified; after that, going back to it is
// tried again (as its message says). Status says "held: ..." once.
func TestHoldLastsUntilTheDesiredStateChanges(t *testing.T) {
	h := newHarness(t)
	h.apply()
	h.mem.FailVersion["api@1.2.0"] = true
	h.vars["api_version"] = "1.2.0"
	if _, res := h.apply(); outcome(res, "api") != ResultRolledBack {
		t.Fatalf("bad release: %+v", res.Servers)
	}
	sts, err := h.eng.Status(context.Background(), h.source())
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range sts {
		if st.Server == "api" && (!strings.HasPrefix(st.Pending, "held: revision") || strings.Contains(st.Pending, "held: held:") || len(st.Held) != 1) {
			t.Fatalf("status of a held server: pending %q, holds %+v", st.Pending, st.Held)
		}
	}
	h.vars["api_version"] = "1.2.1"
	if _, res := h.apply(); outcome(res, "api") != ResultVerified {
		t.Fatalf("the fix: %+v", res.Servers)
	}
	if holds, _ := h.eng.Store.Holds(); len(holds["api"]) != 0 {
		t.Fatalf("holds after a new desired state was verified: %+v", holds["api"])
	}
	// 1.2.0 again (fixed meanwhile): applied, not refused as held.
	h.mem.FailVersion["api@1.2.0"] = false
	h.vars["api_version"] = "1.2.0"
	if c := h.plan().Change("api"); c.Action != ActionUpdate {
		t.Fatalf("going back to a once held version: %+v", c)
	}
}

func TestCheckSavedReasonsWithoutEmptyParens(t *testing.T) {
	saved := &Plan{Changes: []*ServerChange{{Server: "web", Action: ActionUpdate, SpecHash: "a"}}}
	fresh := &Plan{Changes: []*ServerChange{{Server: "web", Action: ActionUpdate, SpecHash: "b"}}}
	err := CheckSaved(saved, fresh)
	var stale *StalePlanError
	if !errors.As(err, &stale) {
		t.Fatalf("CheckSaved = %v, want a StalePlanError", err)
	}
	if strings.Contains(err.Error(), "()") {
		t.Errorf("the stale-plan message has an empty (): %q", err)
	}
	if !strings.Contains(err.Error(), "web: planned to update, now it would update") {
		t.Errorf("the stale-plan message does not name the server's change: %q", err)
	}
	fresh.Changes[0].Reasons = []string{"image a → b"}
	if err := CheckSaved(saved, fresh); err == nil || !strings.Contains(err.Error(), "(image a → b)") {
		t.Errorf("CheckSaved = %v, want the fresh plan's reason in parentheses", err)
	}
}
