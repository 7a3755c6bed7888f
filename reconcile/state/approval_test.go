package state

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/tendhq/tend/internal/pgtest"
)

// TestApprovalsSurviveReopen records decisions, closes the store and opens
// it again (a restart of tend run): the open decisions are still there, an
// approval is used once, and the newest decision on a change wins.
func TestApprovalsSurviveReopen(t *testing.T) { backends(t, testApprovalsSurviveReopen) }

func testApprovalsSurviveReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	if onPostgres(t) {
		path = pgtest.DSN(t)
	}
	s := reopen(t, path)
	at := time.Date(2026, 12, 7, 4, 0, 0, 0, time.UTC)
	id, err := s.RecordApproval(Approval{Server: "search", ChangeHash: "c1", Decision: Approved, By: "alice", Note: "CAB-12",
		Action: "update", SourceRevision: "abc123", FromVersion: "1.4.2", ToVersion: "1.5.0", At: at})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.RecordApproval(Approval{Server: "db", ChangeHash: "d1", Decision: Rejected, By: "bob", Note: "not during the migration"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RecordApproval(Approval{Server: "db", ChangeHash: "d1", Decision: "maybe"}); err == nil {
		t.Error("a decision that is neither approved nor rejected was recorded")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = reopen(t, path)
	open, err := s.OpenDecisions()
	if err != nil {
		t.Fatal(err)
	}
	got, ok := open["search"]["c1"]
	if !ok || got.ID != id || got.By != "alice" || got.Note != "CAB-12" || got.Decision != Approved || !got.At.Equal(at) ||
		got.FromVersion != "1.4.2" || got.ToVersion != "1.5.0" || got.SourceRevision != "abc123" || got.Action != "update" {
		t.Fatalf("after reopening, search's decision = %+v (found %v)", got, ok)
	}
	if open["db"]["d1"].Decision != Rejected || open["db"]["d1"].Note != "not during the migration" {
		t.Errorf("db's decision = %+v", open["db"]["d1"])
	}
	if len(open["search"]) != 1 {
		t.Errorf("search has %d open decisions, want 1 (an approval is bound to one change hash)", len(open["search"]))
	}

	// Used once: the second use is refused, and it is no longer open.
	rev := mustBegin(t, s, Revision{Server: "search", Version: "1.5.0"})
	if ok, err := s.UseApproval(id, rev, at.Add(time.Minute)); err != nil || !ok {
		t.Fatalf("UseApproval = %v, %v", ok, err)
	}
	if ok, err := s.UseApproval(id, rev, at.Add(2*time.Minute)); err != nil || ok {
		t.Fatalf("second UseApproval = %v, %v; want false", ok, err)
	}
	open, _ = s.OpenDecisions()
	if _, ok := open["search"]["c1"]; ok {
		t.Error("a used approval is still open")
	}
	of, err := s.ApprovalOf(rev)
	if err != nil || of.ID != id || of.RevisionID != rev || !of.UsedAt.Equal(at.Add(time.Minute)) {
		t.Fatalf("ApprovalOf(%d) = %+v, %v", rev, of, err)
	}
	if _, err := s.ApprovalOf(rev + 100); !errors.Is(err, ErrNotFound) {
		t.Errorf("ApprovalOf of an unapproved revision: %v, want ErrNotFound", err)
	}

	// The newest decision on a change wins: approve after a rejection.
	if _, err := s.RecordApproval(Approval{Server: "db", ChangeHash: "d1", Decision: Approved, By: "carol"}); err != nil {
		t.Fatal(err)
	}
	open, _ = s.OpenDecisions()
	if d := open["db"]["d1"]; d.Decision != Approved || d.By != "carol" {
		t.Errorf("after approving a rejected change: %+v", d)
	}
	// A rejection cannot be used.
	list, err := s.Approvals("db", 0)
	if err != nil || len(list) != 2 || list[0].By != "carol" || list[1].Decision != Rejected {
		t.Fatalf("Approvals(db) = %+v, %v", list, err)
	}
	if ok, _ := s.UseApproval(list[1].ID, 0, at); ok {
		t.Error("a rejection was used as an approval")
	}
	all, _ := s.Approvals("", 2)
	if len(all) != 2 {
		t.Errorf("Approvals(\"\", 2) = %d rows", len(all))
	}
}

// TestOpenReadOnly reads another tend's store without writing to it.
func TestOpenReadOnly(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.db")
	w, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	rev := mustBegin(t, w, Revision{Server: "search", Version: "1.5.0"})
	mustFinish(t, w, rev, OutcomeVerified)

	r, err := OpenReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	hist, err := r.History("search", 0)
	if err != nil || len(hist) != 1 || hist[0].Outcome != OutcomeVerified || hist[0].Version != "1.5.0" {
		t.Fatalf("History through the read-only store = %+v, %v", hist, err)
	}
	if _, err := r.RecordApproval(Approval{Server: "x", ChangeHash: "h", Decision: Approved}); err == nil {
		t.Error("a read-only store accepted a write")
	}
	if _, err := OpenReadOnly(filepath.Join(dir, "missing.db")); err == nil {
		t.Error("OpenReadOnly of a missing file succeeded")
	}
}
