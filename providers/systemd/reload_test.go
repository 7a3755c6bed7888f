package systemd_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tendhq/tend/internal/testports"
	"github.com/tendhq/tend/providers"
	"github.com/tendhq/tend/providers/systemd"
	"github.com/tendhq/tend/providers/systemd/systemdtest"
	"github.com/tendhq/tend/reconcile"
	"github.com/tendhq/tend/reconcile/state"
	"github.com/tendhq/tend/spec"
)

// reloadRepo runs mcp-notes 1.0.0 with a config file and a reload block.
const reloadRepo = `
variable "bin_dir" {
  type = string
}

variable "port" {
  type = number
}

variable "limit" {
  default = 0
}

variable "workers" {
  default = 4
}

provider "systemd" "local" {}

server "notes" {
  provider = provider.systemd.local
  version  = "1.0.0"
  command  = ["${var.bin_dir}/mcp-notes-${version}", "--config", "notes.yaml", "--data-dir", "$(TEND_VOLUME_DATA)"]
  replicas = 2
  port     = var.port
  volume "data" {
    path = "/data"
  }
  config_file "notes.yaml" {
    content = "workers: ${var.workers}\nrate_limiting:\n  enabled: ${var.limit > 0}\n  max_requests: ${max(var.limit, 1)}\n  window: 60\n"
  }
  reload {
    signal = "HUP"
  }
  check "health" {
    http {
      path = "/health"
    }
    interval = "300ms"
    timeout  = "300ms"
  }
  rollout {
    verify_for        = "2s"
    progress_deadline = "30s"
  }
}
`

// TestInsideEngineReload: with the systemd provider, a change of config
// files only is a reload: the files are written, each unit's main process
// gets SIGHUP (same pid, mcp-notes counts the reload), and the plan is
// empty after; a config that breaks mcp-notes falls back to a rolling
// restart, which fails too, and is rolled back.
func TestInsideEngineReload(t *testing.T) {
	systemdtest.SkipUnlessInside(t)
	bin := os.Getenv(systemdtest.NotesDirEnv)
	if bin == "" {
		t.Fatalf("%s is not set", systemdtest.NotesDirEnv)
	}
	port := testports.Consecutive(t, 2)
	repo := t.TempDir()
	if err := os.WriteFile(filepath.Join(repo, "main.hcl"), []byte(reloadRepo), 0o644); err != nil {
		t.Fatal(err)
	}
	stateDir := t.TempDir()
	st, err := state.Open(filepath.Join(stateDir, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	managedBy := "reload-" + strconv.Itoa(os.Getpid())
	vars := map[string]string{"bin_dir": bin, "port": strconv.Itoa(port)}
	opts := func() spec.Options { return spec.Options{Strict: true, Vars: vars} }
	reg := providers.NewRegistry()
	systemd.Register(reg)
	var progress strings.Builder
	eng := &reconcile.Engine{
		Store: st, Registry: reg, ManagedBy: managedBy,
		ProvEnv:     providers.Env{StateDir: stateDir, ManagedBy: managedBy},
		Host:        reconcile.Host{Name: "systemd-test"},
		LoadOptions: opts(), Progress: &progress,
	}
	source := func() *reconcile.Source {
		t.Helper()
		src, _, diags := reconcile.LoadSource(repo, opts())
		if diags.HasErrors() {
			t.Fatal(diags.Error())
		}
		return src
	}
	apply := func() string {
		t.Helper()
		eng.LoadOptions = opts()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		_, res, err := eng.ApplySource(ctx, source(), nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range res.Servers {
			if s.Server == "notes" {
				return s.Outcome + " " + s.Message
			}
		}
		return ""
	}
	observe := func() []providers.Instance {
		t.Helper()
		prov, err := reg.Get(source().Config, "systemd.local", eng.ProvEnv)
		if err != nil {
			t.Fatal(err)
		}
		res := prov.Observe(context.Background(), providers.ObserveRequest{ManagedBy: managedBy})
		if res.Err != nil {
			t.Fatal(res.Err)
		}
		return res.Instances
	}
	t.Cleanup(func() {
		for _, in := range observe() {
			prov, _ := reg.Get(source().Config, "systemd.local", eng.ProvEnv)
			prov.StopReplica(context.Background(), providers.StopRequest{Instance: in, Grace: time.Second})
		}
		if t.Failed() {
			t.Logf("progress:\n%s", progress.String())
		}
	})
	healthHas := func(replica int, want string) string {
		t.Helper()
		var body string
		waitFor(t, func() error {
			var err error
			body, err = get(port+replica, "/health")
			if err == nil && !strings.Contains(body, want) {
				err = errorString("replica " + strconv.Itoa(replica) + " /health " + body + ", want " + want)
			}
			return err
		})
		return body
	}
	pidOf := func(body string) string {
		_, rest, _ := strings.Cut(body, `"pid":`)
		pid, _, _ := strings.Cut(rest, ",")
		return pid
	}

	if out := apply(); !strings.HasPrefix(out, reconcile.ResultVerified) {
		t.Fatalf("create: %s", out)
	}
	pids := []string{pidOf(healthHas(0, `"reloads":0`)), pidOf(healthHas(1, `"reloads":0`))}

	vars["limit"] = "5"
	p, err := eng.Plan(context.Background(), source())
	if err != nil {
		t.Fatal(err)
	}
	if c := p.Change("notes"); c == nil || c.Action != reconcile.ActionReload {
		t.Fatalf("the plan of a config change: %+v, want reload", c)
	}
	if out := apply(); !strings.HasPrefix(out, reconcile.ResultVerified) || !strings.Contains(out, "(no restart)") {
		t.Fatalf("the reload: %s", out)
	}
	for r := range 2 {
		body := healthHas(r, `"reloads":1`)
		if pidOf(body) != pids[r] || !strings.Contains(body, `"rate_limiting":"5 requests per 60s per client IP"`) {
			t.Errorf("replica %d after the reload: %s, want pid %s and the new rate limit", r, body, pids[r])
		}
	}
	for _, in := range observe() {
		if len(in.Drift) != 0 || in.State != providers.StateRunning {
			t.Errorf("replica %d after the reload: %s, drift %q", in.Replica, in.State, in.Drift)
		}
	}
	if p, err := eng.Plan(context.Background(), source()); err != nil || p.HasChanges() {
		t.Fatalf("the plan after the reload has changes: %v %+v", err, p.Change("notes"))
	}
	if strings.Contains(progress.String(), "fell back") || strings.Contains(progress.String(), "rolling: replicas") {
		t.Errorf("the reload restarted replicas:\n%s", progress.String())
	}

	// A config mcp-notes refuses: fallback, failure, rollback.
	vars["workers"] = "0"
	out := apply()
	if !strings.HasPrefix(out, reconcile.ResultRolledBack) || !strings.Contains(out, "fell back to a rolling restart, which failed") {
		t.Fatalf("the breaking reload: %s, want rolled back after a fallback", out)
	}
	for r := range 2 {
		healthHas(r, `"rate_limiting":"5 requests per 60s per client IP"`)
	}
}

type errorString string

func (e errorString) Error() string { return string(e) }
