package reconcile

import (
	"slices"
	"testing"

	"github.com/tendhq/tend/providers"
	"github.com/tendhq/tend/reconcile/state"
	"github.com/tendhq/tend/spec"
)

// TestPlanReload: a change of config files only, on a server with a reload
// block whose replicas run the recorded revision, is a reload; anything
// else that changes replicas is the update it always was.
func TestPlanReload(t *testing.T) {
	base := func() *spec.Server {
		return &spec.Server{
			Name: "notes", Provider: spec.DefaultProcessProvider, Version: "1.0.0", Replicas: 2,
			Command:     []spec.Value{spec.Plain("./notes")},
			Env:         map[string]spec.Value{"MODE": spec.Plain("a")},
			ConfigFiles: []*spec.ConfigFile{{Path: "notes.yaml", Content: spec.Plain("workers: 4\n"), Mode: 0o644}},
			Reload:      &spec.Reload{Signal: "HUP", Timeout: spec.DefaultReloadTimeout},
			Rollout:     spec.Rollout{Strategy: spec.StrategyRolling, MaxUnavailable: spec.IntOrPercent{Value: 1}},
		}
	}
	recorded := base()
	oldFields := recorded.Fields()
	rec := &Record{Revision: state.Revision{ID: 1, Server: "notes", Version: "1.0.0", Outcome: state.OutcomeVerified, SpecHash: spec.FieldsHash(oldFields)}, Fields: oldFields}
	running := func(hash string, replicas ...int) []providers.Instance {
		var out []providers.Instance
		for _, r := range replicas {
			out = append(out, providers.Instance{Identity: providers.Identity{Server: "notes", Replica: r, SpecHash: hash, Version: "1.0.0"},
				Provider: spec.DefaultProcessProvider, State: providers.StateRunning})
		}
		return out
	}
	oldHash := spec.RuntimeHash(oldFields)
	for _, tc := range []struct {
		name   string
		change func(s *spec.Server)
		insts  []providers.Instance
		want   Action
		start  []int
	}{
		{"config content", func(s *spec.Server) { s.ConfigFiles[0].Content = spec.Plain("workers: 8\n") }, running(oldHash, 0, 1), ActionReload, []int{0, 1}},
		{"config mode", func(s *spec.Server) { s.ConfigFiles[0].Mode = 0o600 }, running(oldHash, 0, 1), ActionReload, []int{0, 1}},
		{"config file added", func(s *spec.Server) {
			s.ConfigFiles = append(s.ConfigFiles, &spec.ConfigFile{Path: "extra.yaml", Content: spec.Plain("x: 1\n"), Mode: 0o644})
		}, running(oldHash, 0, 1), ActionReload, []int{0, 1}},
		{"config file removed", func(s *spec.Server) { s.ConfigFiles = nil }, running(oldHash, 0, 1), ActionUpdate, []int{0, 1}},
		{"config and env", func(s *spec.Server) {
			s.ConfigFiles[0].Content = spec.Plain("workers: 8\n")
			s.Env = map[string]spec.Value{"MODE": spec.Plain("b")}
		}, running(oldHash, 0, 1), ActionUpdate, []int{0, 1}},
		{"config and version", func(s *spec.Server) {
			s.ConfigFiles[0].Content = spec.Plain("workers: 8\n")
			s.Version = "1.1.0"
		}, running(oldHash, 0, 1), ActionUpdate, []int{0, 1}},
		{"no reload block", func(s *spec.Server) {
			s.ConfigFiles[0].Content = spec.Plain("workers: 8\n")
			s.Reload = nil
		}, running(oldHash, 0, 1), ActionUpdate, []int{0, 1}},
		{"a replica missing", func(s *spec.Server) { s.ConfigFiles[0].Content = spec.Plain("workers: 8\n") }, running(oldHash, 0), ActionUpdate, []int{0, 1}},
		{"replicas on another spec than recorded", func(s *spec.Server) { s.ConfigFiles[0].Content = spec.Plain("workers: 8\n") }, running("0123456789abcdef", 0, 1), ActionUpdate, []int{0, 1}},
		{"only the reload block", func(s *spec.Server) { s.Reload = &spec.Reload{Signal: "USR1", Timeout: spec.DefaultReloadTimeout} }, running(oldHash, 0, 1), ActionUpdate, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := base()
			tc.change(s)
			c := planServer(s, s.Fields(), tc.insts, rec, nil)
			if c.Action != tc.want || !slices.Equal(c.Start, tc.start) {
				t.Fatalf("action %s, start %v (%q); want %s, start %v", c.Action, c.Start, c.Reasons, tc.want, tc.start)
			}
			if tc.want == ActionReload && (c.Reasons[0] != "only config files changed: written, and each replica reloads them (SIGHUP), no restart" || !c.Rollout) {
				t.Errorf("reasons %q, rollout %v", c.Reasons, c.Rollout)
			}
			if tc.name == "only the reload block" && c.Rollout {
				t.Errorf("adding or changing a reload block restarts replicas: %q", c.Reasons)
			}
		})
	}
}
