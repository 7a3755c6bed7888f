package reconcile

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tendhq/tend/providers"
	"github.com/tendhq/tend/reconcile/approval"
	"github.com/tendhq/tend/reconcile/state"
	"github.com/tendhq/tend/spec"
)

var update = flag.Bool("update", false, "rewrite golden files")

// goldenState is state.json of a plan case: what the store holds and how
// the running replicas differ from applied.hcl (the desired state of the
// last apply, which the store records and the replicas run).
type goldenState struct {
	Outcome string            `json:"outcome"` // of the recorded revisions; default verified
	Holds   []string          `json:"holds"`   // servers whose current desired state is held
	Vars    map[string]string `json:"vars"`
	Tweaks  []struct {
		Server   string   `json:"server"`
		Replica  int      `json:"replica"`
		State    string   `json:"state"`
		ExitCode int      `json:"exit_code"`
		Drift    []string `json:"drift"`
		Remove   bool     `json:"remove"`
	} `json:"tweaks"`
	// Decisions are approvals and rejections of the changes the plan
	// makes of these servers (bound to the hashes of those changes).
	Decisions []state.Approval `json:"decisions"`
	// Promotions are the verdicts of promotion rules, by server.
	Promotions map[string]approval.Verdict `json:"promotions"`
}

func loadGoldenConfig(t *testing.T, dir, file string, vars map[string]string) *spec.Config {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		t.Fatal(err)
	}
	environ := map[string]string{"TEND_SECRET_DB_PASSWORD": "hunter2", "TEND_SECRET_API_TOKEN": "tok"}
	l := spec.NewLoader(spec.Options{Vars: vars, Environ: func(k string) (string, bool) { v, ok := environ[k]; return v, ok }})
	cfg, diags := l.LoadFiles(dir, map[string][]byte{"main.hcl": src})
	if diags.HasErrors() {
		t.Fatalf("%s: %s", file, diags.Error())
	}
	return cfg
}

// TestPlanGolden plans testdata/plans/CASE: desired.hcl against observed.json
// (what the providers report) and applied.hcl (the desired state recorded at
// the last apply, if any), and compares plan.txt and plan.json.
func TestPlanGolden(t *testing.T) {
	root := "../testdata/plans"
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		t.Run(e.Name(), func(t *testing.T) {
			dir := filepath.Join(root, e.Name())
			var gs goldenState
			if b, err := os.ReadFile(filepath.Join(dir, "state.json")); err == nil {
				if err := json.Unmarshal(b, &gs); err != nil {
					t.Fatal(err)
				}
			}
			cfg := loadGoldenConfig(t, dir, "desired.hcl", gs.Vars)
			at := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
			obs := map[string][]providers.Instance{}
			latest := map[string]*Record{}
			holds := map[string]map[string]state.Hold{}
			if _, err := os.Stat(filepath.Join(dir, "applied.hcl")); err == nil {
				applied := loadGoldenConfig(t, dir, "applied.hcl", nil)
				id := int64(1)
				for _, name := range applied.ServerNames() {
					s := applied.Servers[name]
					f := s.Fields()
					d := &providers.Desired{Server: s, SpecHash: spec.RuntimeHash(f), Revision: "dir-applied", ManagedBy: "tend"}
					for i := 0; i < s.Replicas; i++ {
						in := providers.Instance{Identity: d.Identity(i), ID: name + "-" + itoa(i), Provider: s.Provider,
							State: providers.StateRunning, Host: "127.0.0.1", Ports: providers.ReplicaPorts(s, i), StartedAt: at}
						skip := false
						for _, tw := range gs.Tweaks {
							if tw.Server != name || tw.Replica != i {
								continue
							}
							skip = skip || tw.Remove
							if tw.State != "" {
								in.State, in.ExitCode = providers.State(tw.State), tw.ExitCode
							}
							in.Drift = append(in.Drift, tw.Drift...)
						}
						if !skip {
							obs[s.Provider] = append(obs[s.Provider], in)
						}
					}
					outcome := state.OutcomeVerified
					if gs.Outcome != "" {
						outcome = state.Outcome(gs.Outcome)
					}
					latest[name] = &Record{Revision: state.Revision{ID: id, Server: name, Version: applied.Servers[name].Version, SpecHash: spec.FieldsHash(f), Outcome: outcome, StartedAt: at}, Fields: f}
					id++
				}
			}
			for _, name := range gs.Holds {
				f := cfg.Servers[name].Fields()
				holds[name] = map[string]state.Hold{spec.FieldsHash(f): {Server: name, SpecHash: spec.FieldsHash(f), Version: cfg.Servers[name].Version, RevisionID: 9, Reason: "replica 0 exited (exit code 1)", At: at}}
			}
			in := PlanInput{Config: cfg, SourceRevision: "dir-golden", ManagedBy: "tend", Host: Host{Name: "h1"}, Observed: obs, Latest: latest, Holds: holds, Now: at, Promotions: gs.Promotions}
			p, err := BuildPlan(in)
			if len(gs.Decisions) > 0 && err == nil {
				// Bind each decision to the change the plan makes, as
				// tend approve does, and plan again.
				in.Decisions = map[string]map[string]state.Approval{}
				for i, d := range gs.Decisions {
					c := p.Change(d.Server)
					if c == nil || c.ChangeHash == "" {
						t.Fatalf("decision on %s: the plan has no change of it that needs an approval", d.Server)
					}
					d.ID, d.ChangeHash, d.At = int64(i+1), c.ChangeHash, at.Add(-time.Hour)
					in.Decisions[d.Server] = map[string]state.Approval{c.ChangeHash: d}
				}
				p, err = BuildPlan(in)
			}
			var txt bytes.Buffer
			if err != nil {
				txt.WriteString("Error: " + err.Error() + "\n")
			} else {
				RenderPlan(&txt, p, false)
			}
			golden(t, filepath.Join(dir, "plan.txt"), txt.String())
			if p != nil {
				b, _ := json.MarshalIndent(p, "", "  ")
				golden(t, filepath.Join(dir, "plan.json"), string(b)+"\n")
			}
			for _, secret := range []string{"hunter2", "tok"} {
				if strings.Contains(txt.String(), `"`+secret+`"`) {
					t.Errorf("the plan shows a secret")
				}
			}
		})
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("missing golden file (go test ./reconcile -update): %v", err)
	}
	if string(want) != got {
		t.Errorf("%s differs (go test ./reconcile -update to accept):\n--- want\n%s\n--- got\n%s", path, want, got)
	}
}
