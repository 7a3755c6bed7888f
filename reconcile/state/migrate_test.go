package state

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tendhq/tend/internal/pgtest"
)

// fillEveryTable records a row or more in every table a store has.
func fillEveryTable(t *testing.T, s *Store) {
	t.Helper()
	fillStore(t, s, 120)
	v := mustBegin(t, s, Revision{Server: "web", Version: "1.2.0", SpecHash: "h1", Spec: []byte(`{"a":1}`)})
	mustFinish(t, s, v, OutcomeVerified)
	f := mustBegin(t, s, Revision{Server: "web", Version: "1.3.0", SpecHash: "h2"})
	mustFinish(t, s, f, OutcomeFailed)
	mustBegin(t, s, Revision{Server: "api", Version: "0.1.0"}) // pending
	at := time.Date(2026, 3, 4, 5, 6, 7, 8, time.UTC)
	for _, err := range []error{
		s.PutHold(Hold{Server: "web", SpecHash: "h2", RevisionID: f, Reason: "verification failed", At: at}),
		s.PutContract(Contract{RevisionID: v, Server: "web", Version: "1.2.0", Contract: []byte(`{"tools":["a"]}`), RecordedAt: at}),
		s.PutSource("git-abc", map[string][]byte{"main.hcl": []byte(`server "web" {}`)}),
		s.PutBackup(Backup{ID: "b1", Server: "web", Trigger: TriggerManual, RevisionID: v, Outcome: BackupOK, Encrypted: true,
			Size: 42, Manifest: []byte(`{}`), StartedAt: at, FinishedAt: at.Add(time.Second)}),
		s.RecordUsage([]UsageSample{{Server: "web", At: at, Replicas: 2, MilliCPU: 150, MemoryBytes: 3 << 30}}, time.Time{}),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.PutDrill(Drill{Server: "web", BackupID: "b1", Outcome: DrillPassed, StartedAt: at, FinishedAt: at}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RecordApproval(Approval{Server: "web", ChangeHash: "c1", Decision: "approved", By: "ana", Action: "update",
		SourceRevision: "git-abc", FromVersion: "1.2.0", ToVersion: "1.3.0", At: at}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.BeginScale(ScaleDecision{Server: "web", FromReplicas: 2, ToReplicas: 3, Reason: "cpu", Inputs: []byte(`{}`), DecidedAt: at},
		ScaleTarget{Server: "web", Provider: "process.local", Replicas: 3, Min: 1, Max: 5}); err != nil {
		t.Fatal(err)
	}
}

// tend store migrate: every record of a SQLite store, in PostgreSQL, the
// same as read through the store's methods, with the same identity; the
// next revision's ID follows; a second copy into the same database is
// refused.
func TestCopyToPostgres(t *testing.T) {
	ctx := context.Background()
	src := openStore(t)
	fillEveryTable(t, src)
	dsn := pgtest.DSN(t)
	r, err := src.CopyTo(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("copied %d rows in %s: %+v", r.Rows, r.Elapsed.Round(time.Millisecond), r.Tables)
	for _, tr := range r.Tables {
		if tr.Rows == 0 {
			t.Errorf("nothing copied of %s: the test should fill every table", tr.Table)
		}
	}
	if strings.Contains(r.To, "@127") && !strings.Contains(r.To, "xxxxx") {
		t.Errorf("report's target %q shows the password", r.To)
	}

	dst, err := Open(dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	if dst.Identity() != src.Identity() {
		t.Errorf("identity %v, want the source's %v", dst.Identity(), src.Identity())
	}
	same := func(what string, a, b any, errA, errB error) {
		t.Helper()
		if errA != nil || errB != nil {
			t.Fatalf("%s: %v, %v", what, errA, errB)
		}
		if !reflect.DeepEqual(a, b) {
			t.Errorf("%s differs:\n sqlite   %+v\n postgres %+v", what, a, b)
		}
	}
	h1, e1 := src.History("", 0)
	h2, e2 := dst.History("", 0)
	same("history", h1, h2, e1, e2)
	ho1, e1 := src.Holds()
	ho2, e2 := dst.Holds()
	same("holds", ho1, ho2, e1, e2)
	c1, e1 := src.LastVerifiedContracts()
	c2, e2 := dst.LastVerifiedContracts()
	same("contracts", c1, c2, e1, e2)
	s1, e1 := src.GetSource("git-abc")
	s2, e2 := dst.GetSource("git-abc")
	same("source", s1, s2, e1, e2)
	b1, e1 := src.Backups("", 0)
	b2, e2 := dst.Backups("", 0)
	same("backups", b1, b2, e1, e2)
	_, d1, e1 := src.LatestDrills()
	_, d2, e2 := dst.LatestDrills()
	same("drills", d1, d2, e1, e2)
	st1, e1 := src.ScaleTargets()
	st2, e2 := dst.ScaleTargets()
	same("scale targets", st1, st2, e1, e2)
	sd1, e1 := src.ScaleDecisions("", 0)
	sd2, e2 := dst.ScaleDecisions("", 0)
	same("scale decisions", sd1, sd2, e1, e2)
	u1, e1 := src.UsageSince(time.Time{})
	u2, e2 := dst.UsageSince(time.Time{})
	same("usage", u1, u2, e1, e2)
	a1, e1 := src.Approvals("", 0)
	a2, e2 := dst.Approvals("", 0)
	same("approvals", a1, a2, e1, e2)

	// The next IDs follow the copied ones.
	next, err := dst.BeginRevision(Revision{Server: "web"})
	if err != nil || next != h1[0].ID+1 {
		t.Errorf("next revision ID = %d, %v; want %d", next, err, h1[0].ID+1)
	}
	if _, err := dst.PutDrill(Drill{Server: "web", BackupID: "b1", Outcome: DrillFailed}); err != nil {
		t.Errorf("next drill: %v", err)
	}
	if _, err := dst.RecordApproval(Approval{Server: "web", ChangeHash: "c2", Decision: "rejected", Action: "delete"}); err != nil {
		t.Errorf("next approval: %v", err)
	}

	// Into a store that is not empty: refused, and nothing changes.
	_, err = src.CopyTo(ctx, dsn)
	if !errors.Is(err, ErrTargetNotEmpty) || !strings.Contains(err.Error(), "revisions 124") {
		t.Fatalf("second copy = %v, want ErrTargetNotEmpty naming the revisions there", err)
	}
	if h, _ := dst.History("", 0); len(h) != len(h1)+1 {
		t.Errorf("after the refused copy the target has %d revisions, want %d", len(h), len(h1)+1)
	}
}

// A store whose apply lock is held is not copied: what the holder records
// after the copy would be lost.
func TestCopyRefusesLockedStore(t *testing.T) {
	src := openStore(t)
	lease, err := src.Lock(applyInfo, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	defer lease.Release()
	dsn := pgtest.DSN(t)
	if _, err := src.CopyTo(context.Background(), dsn); err == nil || !strings.Contains(err.Error(), "holds the apply lock") {
		t.Fatalf("CopyTo of a locked store = %v", err)
	}
}
