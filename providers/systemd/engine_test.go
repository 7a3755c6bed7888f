package systemd_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
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

// notesRepo deploys mcp-notes releases as two systemd units.
const notesRepo = `
variable "bin_dir" {
  type = string
}

variable "notes_version" {
  default = "1.0.0"
}

variable "port" {
  type = number
}

provider "systemd" "local" {
  artifact_dir = "/opt/tend-e2e"
}

server "notes" {
  provider = provider.systemd.local
  version  = var.notes_version
  command  = ["${var.bin_dir}/mcp-notes-${version}"]
  replicas = 2
  port     = var.port
  env = {
    NOTES_DATA_DIR = "$(TEND_VOLUME_DATA)"
    API_TOKEN      = secret("api_token")
  }
  volume "data" {
    path = "/data"
  }
  check "health" {
    http {
      path          = "/health"
      body_contains = "ok"
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

// TestInsideEngine runs tend's engine with the systemd provider: mcp-notes
// 1.0.0 on two replicas, an upgrade to 1.1.0, then 1.2.0 that crashes at
// start, rolled back to 1.1.0 by itself and held.
func TestInsideEngine(t *testing.T) {
	systemdtest.SkipUnlessInside(t)
	bin := os.Getenv(systemdtest.NotesDirEnv)
	if bin == "" {
		t.Fatalf("%s is not set", systemdtest.NotesDirEnv)
	}
	port := testports.Consecutive(t, 3)
	repo := t.TempDir()
	if err := os.WriteFile(filepath.Join(repo, "main.hcl"), []byte(notesRepo), 0o644); err != nil {
		t.Fatal(err)
	}
	stateDir := t.TempDir()
	st, err := state.Open(filepath.Join(stateDir, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	managedBy := "engine-" + strconv.Itoa(os.Getpid())
	vars := map[string]string{"bin_dir": bin, "port": strconv.Itoa(port)}
	opts := func() spec.Options {
		environ := map[string]string{"TEND_SECRET_API_TOKEN": "tok-engine-secret"}
		return spec.Options{Strict: true, Vars: vars,
			Environ: func(k string) (string, bool) { v, ok := environ[k]; return v, ok }}
	}
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
	apply := func() *reconcile.ApplyResult {
		t.Helper()
		eng.LoadOptions = opts()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		_, res, err := eng.ApplySource(ctx, source(), nil)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	outcome := func(res *reconcile.ApplyResult) string {
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
	health := func(replica int, version string) {
		t.Helper()
		body, err := get(port+replica, "/health")
		if err != nil || !strings.Contains(body, `"version":"`+version+`"`) {
			t.Errorf("replica %d /health: %q %v, want version %s", replica, body, err, version)
		}
	}

	// Create.
	if res := apply(); !strings.HasPrefix(outcome(res), reconcile.ResultVerified) {
		t.Fatalf("create: %s\n%s", outcome(res), progress.String())
	}
	health(0, "1.0.0")
	health(1, "1.0.0")
	if p, err := eng.Plan(context.Background(), source()); err != nil || p.HasChanges() {
		t.Fatalf("the plan after the create has changes: %v %+v", err, p)
	}

	// Upgrade to 1.1.0.
	vars["notes_version"] = "1.1.0"
	if res := apply(); !strings.HasPrefix(outcome(res), reconcile.ResultVerified) {
		t.Fatalf("upgrade to 1.1.0: %s\n%s", outcome(res), progress.String())
	}
	health(0, "1.1.0")
	health(1, "1.1.0")

	// 1.2.0 crashes at start: rolled back to 1.1.0, and held.
	vars["notes_version"] = "1.2.0"
	if res := apply(); !strings.HasPrefix(outcome(res), reconcile.ResultRolledBack) {
		t.Fatalf("the crashing 1.2.0: %s, want rolled back\n%s", outcome(res), progress.String())
	}
	for _, in := range observe() {
		if in.Version != "1.1.0" || in.State != providers.StateRunning || len(in.Drift) != 0 {
			t.Errorf("after the rollback, replica %d: version %s, %s (%s), drift %q", in.Replica, in.Version, in.State, in.Message, in.Drift)
		}
	}
	waitFor(t, func() error {
		for i := range 2 {
			if body, err := get(port+i, "/health"); err != nil || !strings.Contains(body, `"version":"1.1.0"`) {
				return fmt.Errorf("replica %d: %q %v", i, body, err)
			}
		}
		return nil
	})
	p, err := eng.Plan(context.Background(), source())
	if err != nil {
		t.Fatal(err)
	}
	if c := p.Change("notes"); c == nil || c.Action != reconcile.ActionHeld {
		t.Fatalf("the plan after the rollback: %+v, want notes held", c)
	}
	if p.HasChanges() {
		t.Error("a held revision still plans changes")
	}
	if strings.Contains(progress.String(), "tok-engine-secret") {
		t.Error("the progress output shows the secret")
	}
}

func get(port int, path string) (string, error) {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d%s", port, path))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func waitFor(t *testing.T, f func() error) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
