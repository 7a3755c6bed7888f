package reconcile

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tendhq/tend/reconcile/contract"
	"github.com/tendhq/tend/reconcile/fleetdocs"
	"github.com/tendhq/tend/reconcile/state"
	"github.com/tendhq/tend/spec"
)

// docsSecret is the secret of the docs fixture's fleet: no document may
// show it, not even when a recorded message holds it.
const docsSecret = "tok-s3cr3t-notes-42"

// TestDocsHistoryGolden records a history in a real SQLite store through
// the state API (notes: 1.3.0 verified with a contract; 1.4.0 failed and
// rolled back; 1.4.0 verified again with a contract that added and removed
// tools, approved by alice; a heal; a failure whose message holds the
// secret), reads it back
// with DocsHistory, and compares the CHANGELOG.md and TROUBLESHOOTING.md
// fleetdocs writes with testdata/docs.
func TestDocsHistoryGolden(t *testing.T) {
	environ := map[string]string{"TEND_SECRET_NOTES_TOKEN": docsSecret}
	cfg, _, diags := spec.Load("fleetdocs/testdata/fleet", spec.Options{
		Environ: func(k string) (string, bool) { v, ok := environ[k]; return v, ok },
		Strict:  true,
	})
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	st, err := state.Open(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()

	notes := cfg.Servers["notes"]
	fields := func(version string) []byte {
		s := *notes
		s.Version = version
		b, _ := json.Marshal(s.Fields())
		return b
	}
	var full contract.Contract
	b, err := os.ReadFile("fleetdocs/testdata/contracts/notes.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &full); err != nil {
		t.Fatal(err)
	}
	// 1.3.0 had no search_notes, and an export_notes that 1.4.0 removed.
	older := full
	older.Version = "1.3.0"
	older.Tools = nil
	for _, tl := range full.Tools {
		if tl.Name != "search_notes" {
			older.Tools = append(older.Tools, tl)
		}
	}
	older.Tools = append(older.Tools, contract.Tool{Name: "export_notes", Description: "Exports every note as JSON.", InputSchema: json.RawMessage(`{"type":"object"}`)})
	base := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	record := func(min int, version, commit, trigger string, outcome state.Outcome, msg string, c *contract.Contract) int64 {
		t.Helper()
		id, err := st.BeginRevision(state.Revision{Server: "notes", SourceRevision: commit, SpecHash: commit + version,
			Version: version, Spec: fields(version), Trigger: trigger, StartedAt: base.Add(time.Duration(min) * time.Minute)})
		if err != nil {
			t.Fatal(err)
		}
		if err := st.FinishRevision(id, outcome, msg, base.Add(time.Duration(min+1)*time.Minute)); err != nil {
			t.Fatal(err)
		}
		if c != nil {
			cb, _ := json.Marshal(c)
			if err := st.PutContract(state.Contract{RevisionID: id, Server: "notes", Version: version, Contract: cb, RecordedAt: base}); err != nil {
				t.Fatal(err)
			}
		}
		return id
	}
	record(0, "1.3.0", "a1b2c3d4e5f6", "apply", state.OutcomeVerified, "created 1.3.0 verified", &older)
	record(60, "1.4.0", "b2c3d4e5f6a1", "apply", state.OutcomeRolledBack,
		"replica 0 failed verification: check health: GET /health: status 503, want 200 (3 times in a row); the output of replica 0 ends: token "+docsSecret+" refused; rolled back to revision 1 (1.3.0), verified as revision 3", nil)
	record(62, "1.3.0", "a1b2c3d4e5f6", "auto-rollback", state.OutcomeVerified, "restored revision 1 (1.3.0)", &older)
	approved := record(120, "1.4.0", "c3d4e5f6a1b2", "retry", state.OutcomeVerified, "rolling update to 1.4.0 verified", &full)
	// 1.4.0 needed an approval: alice gave it, and revision 4 carried it out.
	aid, err := st.RecordApproval(state.Approval{Server: "notes", ChangeHash: "h-1.4.0", Decision: state.Approved, By: "alice",
		Action: "update", SourceRevision: "c3d4e5f6a1b2", FromVersion: "1.3.0", ToVersion: "1.4.0", At: base.Add(119 * time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := st.UseApproval(aid, approved, base.Add(121*time.Minute)); err != nil || !ok {
		t.Fatalf("use approval: %v %v", ok, err)
	}
	record(180, "1.4.0", "c3d4e5f6a1b2", "drift", state.OutcomeVerified, "healed 1.4.0 verified", &full)
	record(240, "1.5.0", "d4e5f6a1b2c3", "apply", state.OutcomeFailed, "the pre_deploy hook failed, so no replica was changed: exit code 1: connection refused", nil)

	e := &Engine{Store: st}
	h, err := e.DocsHistory(cfg)
	if err != nil {
		t.Fatal(err)
	}
	files, err := fleetdocs.Generate(cfg, nil, fleetdocs.Options{Title: "Notes fleet", History: h})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"CHANGELOG.md", "TROUBLESHOOTING.md"} {
		got := files[name]
		if strings.Contains(string(got), docsSecret) {
			t.Errorf("%s shows the secret", name)
		}
		path := filepath.Join("..", "testdata", "docs", name)
		if *update {
			if err := os.WriteFile(path, got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test ./reconcile -run TestDocsHistoryGolden -update)", err)
		}
		if string(got) != string(want) {
			t.Errorf("%s differs from %s (run with -update to accept):\n%s", name, path, got)
		}
	}
	for _, want := range []string{"API.md", "CONFIGURATION.md", "README.md", "servers/notes.md"} {
		if _, ok := files[want]; !ok {
			t.Errorf("tend docs no longer writes %s", want)
		}
	}
}
