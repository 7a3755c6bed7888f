package approval

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tendhq/tend/reconcile/state"
	"github.com/tendhq/tend/spec"
)

// TestHashBindsTheChange: an approval of one change does not cover another
// version, other settings, the same change from another recorded revision,
// or a delete; the same change hashes the same whatever the plan's action
// word (a rolling update or a recreate).
func TestHashBindsTheChange(t *testing.T) {
	base := Change{Server: "search", Action: "update", FromVersion: "1.4.2", ToVersion: "1.5.0", FromState: "f1", ToState: "t1"}
	same := base
	same.Action = "replace"
	if base.Hash() != same.Hash() {
		t.Error("the same change planned as replace hashes differently from update")
	}
	for name, mod := range map[string]func(*Change){
		"another version":          func(c *Change) { c.ToVersion, c.ToState = "1.5.1", "t2" },
		"other settings":           func(c *Change) { c.ToState = "t3" },
		"from another revision":    func(c *Change) { c.FromState, c.FromVersion = "f0", "1.4.1" },
		"another server":           func(c *Change) { c.Server = "notes" },
		"a delete of the server":   func(c *Change) { c.Action, c.ToState, c.ToVersion = "delete", "", "" },
		"same states, new version": func(c *Change) { c.ToVersion = "1.6.0" },
	} {
		c := base
		mod(&c)
		if c.Hash() == base.Hash() {
			t.Errorf("%s: same hash as the approved change", name)
		}
	}
}

func TestRequired(t *testing.T) {
	rule := func(kinds ...string) []*spec.Approval { return []*spec.Approval{{Changes: kinds}} }
	upd := func(from, to string) Change {
		return Change{Server: "s", Action: "update", FromVersion: from, ToVersion: to, FromState: "a", ToState: "b"}
	}
	cases := []struct {
		name  string
		rules []*spec.Approval
		c     Change
		want  string
	}{
		{"no rules", nil, upd("1.0.0", "2.0.0"), ""},
		{"all, settings only", rule("all"), upd("1.0.0", "1.0.0"), "all"},
		{"major on a minor", rule("major"), upd("1.4.2", "1.5.0"), ""},
		{"major on a major", rule("major"), upd("1.4.2", "2.0.0"), "major"},
		{"major on 0.x minor", rule("major"), upd("0.4.2", "0.5.0"), "major"},
		{"major on a downgrade", rule("major"), upd("1.5.0", "1.4.2"), "major"},
		{"major on a non-semver version", rule("major"), upd("latest", "edge"), "major"},
		{"version on a patch", rule("version"), upd("1.4.2", "1.4.3"), "version"},
		{"version on settings", rule("version"), upd("1.4.2", "1.4.2"), ""},
		{"delete", rule("delete"), Change{Server: "s", Action: "delete", FromVersion: "1.0.0", FromState: "a"}, "delete"},
		{"delete rule on an update", rule("delete"), upd("1.0.0", "2.0.0"), ""},
		{"create", rule("create"), Change{Server: "s", Action: "create", ToVersion: "1.0.0", ToState: "b"}, "create"},
		{"all on a heal (recorded state put back)", rule("all"), Change{Server: "s", Action: "create", FromVersion: "1.0.0", ToVersion: "1.0.0", FromState: "a", ToState: "a"}, ""},
		{"all on verify", rule("all"), Change{Server: "s", Action: "verify", FromState: "a", ToState: "b"}, ""},
		{"all on a config reload", rule("all"), Change{Server: "s", Action: "reload", FromVersion: "1.0.0", ToVersion: "1.0.0", FromState: "a", ToState: "b"}, "all"},
		{"two rules add up", []*spec.Approval{{Changes: []string{"delete"}}, {Changes: []string{"version", "major"}}}, upd("1.0.0", "2.0.0"), "version,major"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := strings.Join(Required(tc.rules, tc.c), ","); got != tc.want {
				t.Errorf("Required = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestDecide(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 53, 0, 0, time.UTC)
	ago := func(d time.Duration) time.Time { return now.Add(-d) }
	run := func(id int64, v string, o state.Outcome, at time.Time) Run {
		return Run{ID: id, Version: v, Outcome: o, StartedAt: at.Add(-time.Minute), FinishedAt: at}
	}
	cases := []struct {
		name    string
		runs    []Run
		err     error
		ok      bool
		failed  bool
		until   time.Time
		contain string
	}{
		{name: "soaking", runs: []Run{run(3, "1.5.0", state.OutcomeVerified, ago(12*time.Minute)), run(2, "1.4.2", state.OutcomeVerified, ago(48*time.Hour))},
			until: now.Add(48 * time.Minute), contain: "1.5.0 was verified in staging 12 min ago (revision 3); it may be promoted after 13:41:00 UTC"},
		{name: "soaked", runs: []Run{run(3, "1.5.0", state.OutcomeVerified, ago(2*time.Hour))}, ok: true, contain: "verified in staging 2h ago"},
		{name: "soak counts from the first verified run", runs: []Run{
			run(5, "1.5.0", state.OutcomeVerified, ago(5*time.Minute)), run(4, "1.5.0", state.OutcomeVerified, ago(70*time.Minute))}, ok: true, contain: "revision 4"},
		{name: "failed", runs: []Run{run(4, "1.5.0", state.OutcomeRolledBack, ago(time.Minute)), run(3, "1.5.0", state.OutcomeVerified, ago(3*time.Hour))},
			failed: true, contain: "1.5.0 failed verification in staging (revision 4"},
		{name: "verified again after a failure: the soak starts again", runs: []Run{
			run(6, "1.5.0", state.OutcomeVerified, ago(10*time.Minute)), run(5, "1.5.0", state.OutcomeFailed, ago(3*time.Hour)), run(4, "1.5.0", state.OutcomeVerified, ago(5*time.Hour))},
			until: now.Add(50 * time.Minute), contain: "revision 6"},
		{name: "no record", runs: []Run{run(2, "1.4.2", state.OutcomeVerified, ago(48*time.Hour))}, contain: "staging has no record of 1.5.0"},
		{name: "pending", runs: []Run{{ID: 7, Version: "1.5.0", Outcome: state.OutcomePending, StartedAt: ago(time.Minute)}}, contain: "1.5.0 is being verified in staging"},
		{name: "unreachable", err: errors.New("connection refused"), contain: "the history of staging cannot be read (connection refused); 1.5.0 is not promoted until it can"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := Decide("staging", time.Hour, "1.5.0", tc.runs, tc.err, now)
			if v.OK != tc.ok || v.Failed != tc.failed || !v.Until.Equal(tc.until) || !strings.Contains(v.Reason, tc.contain) {
				t.Errorf("Decide = %+v\nwant ok %v failed %v until %v, reason containing %q", v, tc.ok, tc.failed, tc.until, tc.contain)
			}
		})
	}
}

// TestStoreHistory reads a real store of another tend, read-only.
func TestStoreHistory(t *testing.T) {
	dir := t.TempDir()
	st, err := state.Open(filepath.Join(dir, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	id, err := st.BeginRevision(state.Revision{Server: "search", Version: "1.5.0"})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.FinishRevision(id, state.OutcomeVerified, "", time.Now()); err != nil {
		t.Fatal(err)
	}
	h := NewHistory(&spec.Promotion{From: "staging", Store: dir}, nil)
	runs, err := h.Runs(context.Background(), "search")
	if err != nil || len(runs) != 1 || runs[0].Version != "1.5.0" || runs[0].Outcome != state.OutcomeVerified || runs[0].FinishedAt.IsZero() {
		t.Fatalf("Runs = %+v, %v", runs, err)
	}
	if _, err := NewHistory(&spec.Promotion{From: "staging", Store: filepath.Join(dir, "nope")}, nil).Runs(context.Background(), "search"); err == nil {
		t.Error("a missing store read without an error")
	}
}
