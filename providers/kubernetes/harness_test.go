package kubernetes_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tendhq/tend/providers"
	"github.com/tendhq/tend/providers/kubernetes"
	"github.com/tendhq/tend/reconcile"
	"github.com/tendhq/tend/reconcile/state"
	"github.com/tendhq/tend/spec"
)

// engineHarness runs tend's engine on a one-file repository against the
// test's cluster: a real SQLite store, the kubernetes provider, and the
// repository's variables and secrets, which a test may change between
// applies.
type engineHarness struct {
	t         *testing.T
	repo      string
	Vars      map[string]string
	Environ   map[string]string
	ManagedBy string
	Store     *state.Store
	Registry  *providers.Registry
	Eng       *reconcile.Engine
	// OnFailure, when set, adds to what a failed test logs besides the
	// engine's progress.
	OnFailure func() string

	progress strings.Builder
}

func newEngineHarness(t *testing.T, prefix, repoText string, vars map[string]string) *engineHarness {
	t.Helper()
	h := &engineHarness{t: t, repo: t.TempDir(), Vars: vars, Environ: map[string]string{},
		ManagedBy: prefix + "-" + strconv.Itoa(os.Getpid())}
	if err := os.WriteFile(filepath.Join(h.repo, "main.hcl"), []byte(repoText), 0o644); err != nil {
		t.Fatal(err)
	}
	stateDir := t.TempDir()
	st, err := state.Open(filepath.Join(stateDir, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	h.Store = st
	h.Registry = providers.NewRegistry()
	kubernetes.Register(h.Registry)
	h.Eng = &reconcile.Engine{
		Store: st, Registry: h.Registry, ManagedBy: h.ManagedBy,
		ProvEnv:     providers.Env{StateDir: stateDir, ManagedBy: h.ManagedBy},
		Host:        reconcile.Host{Name: "k8s-test"},
		LoadOptions: h.opts(), Progress: &h.progress,
	}
	t.Cleanup(func() {
		if t.Failed() {
			extra := ""
			if h.OnFailure != nil {
				extra = "\n" + h.OnFailure()
			}
			t.Logf("progress:\n%s%s", h.progress.String(), extra)
		}
	})
	return h
}

func (h *engineHarness) opts() spec.Options {
	return spec.Options{Strict: true, Vars: h.Vars,
		Environ: func(k string) (string, bool) { v, ok := h.Environ[k]; return v, ok }}
}

// Progress is what the engine has said so far.
func (h *engineHarness) Progress() string { return h.progress.String() }

// Source loads the repository as it is now.
func (h *engineHarness) Source() *reconcile.Source {
	h.t.Helper()
	src, _, diags := reconcile.LoadSource(h.repo, h.opts())
	if diags.HasErrors() {
		h.t.Fatal(diags.Error())
	}
	return src
}

// Apply applies the repository and returns the outcome and message of
// server.
func (h *engineHarness) Apply(server string) string {
	h.t.Helper()
	h.Eng.LoadOptions = h.opts()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	_, res, err := h.Eng.ApplySource(ctx, h.Source(), nil)
	if err != nil {
		h.t.Fatal(err)
	}
	for _, s := range res.Servers {
		if s.Server == server {
			return s.Outcome + " " + s.Message
		}
	}
	return ""
}

// Provider is the repository's provider kubernetes.test.
func (h *engineHarness) Provider() providers.Provider {
	h.t.Helper()
	prov, err := h.Registry.Get(h.Source().Config, "kubernetes.test", h.Eng.ProvEnv)
	if err != nil {
		h.t.Fatal(err)
	}
	return prov
}

// Observe lists the instances of server ("" for all) of this tend.
func (h *engineHarness) Observe(server string) []providers.Instance {
	h.t.Helper()
	res := h.Provider().Observe(context.Background(), providers.ObserveRequest{ManagedBy: h.ManagedBy, Server: server})
	if res.Err != nil {
		h.t.Fatal(res.Err)
	}
	return res.Instances
}
