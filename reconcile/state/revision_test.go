package state

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

func mustBegin(t testing.TB, s *Store, r Revision) int64 {
	t.Helper()
	id, err := s.BeginRevision(r)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func mustFinish(t testing.TB, s *Store, id int64, o Outcome) {
	t.Helper()
	if err := s.FinishRevision(id, o, string(o), time.Time{}); err != nil {
		t.Fatal(err)
	}
}

func TestRevisionRoundTrip(t *testing.T) {
	backends(t, func(t *testing.T) {
		s := openStore(t)
		paris := time.FixedZone("CEST", 2*3600)
		started := time.Date(2026, 5, 17, 10, 11, 12, 123456789, paris)
		in := Revision{
			ID:             999, // ignored
			Server:         "web",
			SourceRevision: "0123456789abcdef0123456789abcdef01234567",
			SpecHash:       "sha256:feed",
			Version:        "1.4.2",
			Spec:           []byte(`{"image":"web:1.4.2","env":{"TOKEN":"(redacted)"}}`),
			Trigger:        "apply",
			Outcome:        OutcomeVerified, // ignored: a new revision is pending
			Message:        "applying",
			ApplyID:        "apply-42",
			StartedAt:      started,
			FinishedAt:     started.Add(time.Hour), // ignored
		}
		id := mustBegin(t, s, in)
		if id <= 0 {
			t.Fatalf("id = %d", id)
		}

		got, err := s.Revision(id)
		if err != nil {
			t.Fatal(err)
		}
		want := in
		want.ID = id
		want.Outcome = OutcomePending
		want.FinishedAt = time.Time{}
		checkRevision(t, got, &want)

		finished := started.Add(90*time.Second + 7)
		if err := s.FinishRevision(id, OutcomeFailed, "health check /ready: 503", finished); err != nil {
			t.Fatal(err)
		}
		got, err = s.Revision(id)
		if err != nil {
			t.Fatal(err)
		}
		want.Outcome = OutcomeFailed
		want.Message = "health check /ready: 503"
		want.FinishedAt = finished
		checkRevision(t, got, &want)

		// A failed revision may then become rolled-back.
		if err := s.FinishRevision(id, OutcomeRolledBack, "restored 1.4.1", finished.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.Revision(id); got.Outcome != OutcomeRolledBack || got.Message != "restored 1.4.1" {
			t.Errorf("after rollback: %+v", got)
		}

		// Zero StartedAt means now; nil spec stays nil.
		before := time.Now()
		id2 := mustBegin(t, s, Revision{Server: "db"})
		got, err = s.Revision(id2)
		if err != nil {
			t.Fatal(err)
		}
		if got.StartedAt.Before(before.Add(-time.Second)) || got.StartedAt.Location() != time.UTC || got.Spec != nil {
			t.Errorf("defaults: %+v", got)
		}
	})
}

func checkRevision(t *testing.T, got, want *Revision) {
	t.Helper()
	if got.ID != want.ID || got.Server != want.Server || got.SourceRevision != want.SourceRevision ||
		got.SpecHash != want.SpecHash || got.Version != want.Version || !bytes.Equal(got.Spec, want.Spec) ||
		got.Trigger != want.Trigger || got.Outcome != want.Outcome || got.Message != want.Message ||
		got.ApplyID != want.ApplyID {
		t.Errorf("revision\n got %+v\nwant %+v", got, want)
	}
	if !got.StartedAt.Equal(want.StartedAt) || got.StartedAt.Location() != time.UTC {
		t.Errorf("StartedAt = %v, want %v in UTC", got.StartedAt, want.StartedAt)
	}
	if !got.FinishedAt.Equal(want.FinishedAt) || got.FinishedAt.IsZero() != want.FinishedAt.IsZero() ||
		(!got.FinishedAt.IsZero() && got.FinishedAt.Location() != time.UTC) {
		t.Errorf("FinishedAt = %v, want %v in UTC", got.FinishedAt, want.FinishedAt)
	}
}

func TestRevisionErrors(t *testing.T) {
	backends(t, func(t *testing.T) {
		s := openStore(t)
		if _, err := s.Revision(42); !errors.Is(err, ErrNotFound) {
			t.Errorf("Revision(missing) = %v, want ErrNotFound", err)
		}
		if err := s.FinishRevision(42, OutcomeVerified, "", time.Time{}); !errors.Is(err, ErrNotFound) {
			t.Errorf("FinishRevision(missing) = %v, want ErrNotFound", err)
		}
		if _, err := s.LastVerified("web"); !errors.Is(err, ErrNotFound) {
			t.Errorf("LastVerified(none) = %v, want ErrNotFound", err)
		}
		if _, err := s.BeginRevision(Revision{}); err == nil {
			t.Error("BeginRevision accepted an empty server")
		}
		id := mustBegin(t, s, Revision{Server: "web"})
		for _, o := range []Outcome{OutcomePending, "", "exploded"} {
			if err := s.FinishRevision(id, o, "", time.Time{}); err == nil {
				t.Errorf("FinishRevision accepted outcome %q", o)
			}
		}
	})
}

func TestHistory(t *testing.T) {
	backends(t, func(t *testing.T) {
		s := openStore(t)
		ids := map[string][]int64{}
		var all []int64
		for i := range 10 {
			server := []string{"a", "b", "c"}[i%3]
			id := mustBegin(t, s, Revision{Server: server, Version: fmt.Sprint(i)})
			ids[server] = append(ids[server], id)
			all = append(all, id)
		}
		check := func(server string, limit int, want []int64) {
			t.Helper()
			revs, err := s.History(server, limit)
			if err != nil {
				t.Fatal(err)
			}
			var got []int64
			for _, r := range revs {
				got = append(got, r.ID)
				if server != "" && r.Server != server {
					t.Errorf("History(%q) returned a revision of %q", server, r.Server)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("History(%q, %d) = %v, want %v", server, limit, got, want)
			}
		}
		rev := func(x []int64) []int64 {
			r := make([]int64, len(x))
			for i, v := range x {
				r[len(x)-1-i] = v
			}
			return r
		}
		check("a", 0, rev(ids["a"]))
		check("a", -1, rev(ids["a"]))
		check("a", 2, rev(ids["a"])[:2])
		check("b", 100, rev(ids["b"]))
		check("", 0, rev(all))
		check("", 4, rev(all)[:4])
		check("nobody", 0, nil)
	})
}

func TestLatestAndLastVerified(t *testing.T) {
	backends(t, func(t *testing.T) {
		s := openStore(t)
		rng := rand.New(rand.NewPCG(1, 2))
		outcomes := []Outcome{OutcomeVerified, OutcomeFailed, OutcomeRolledBack, OutcomeDeleted, OutcomeInterrupted, OutcomePending}
		latest := map[string]int64{}
		verified := map[string]int64{}
		for range 600 {
			server := fmt.Sprintf("srv-%02d", rng.IntN(40))
			id := mustBegin(t, s, Revision{Server: server})
			o := outcomes[rng.IntN(len(outcomes))]
			if o != OutcomePending {
				mustFinish(t, s, id, o)
			}
			latest[server] = id
			if o == OutcomeVerified {
				verified[server] = id
			}
		}
		// A server with no verified revision at all.
		latest["never"] = mustBegin(t, s, Revision{Server: "never"})
		mustFinish(t, s, latest["never"], OutcomeFailed)

		check := func(name string, got map[string]*Revision, want map[string]int64) {
			t.Helper()
			if len(got) != len(want) {
				t.Errorf("%s: %d servers, want %d", name, len(got), len(want))
			}
			for server, id := range want {
				r := got[server]
				if r == nil || r.ID != id || r.Server != server {
					t.Errorf("%s[%s] = %+v, want ID %d", name, server, r, id)
				}
			}
		}
		la, err := s.LatestAll()
		if err != nil {
			t.Fatal(err)
		}
		check("LatestAll", la, latest)
		lv, err := s.LastVerifiedAll()
		if err != nil {
			t.Fatal(err)
		}
		check("LastVerifiedAll", lv, verified)
		if lv["never"] != nil {
			t.Error("LastVerifiedAll has a server that never verified")
		}
		for server, id := range verified {
			r, err := s.LastVerified(server)
			if err != nil || r.ID != id || r.Outcome != OutcomeVerified {
				t.Errorf("LastVerified(%s) = %+v, %v; want ID %d", server, r, err, id)
			}
		}
		if _, err := s.LastVerified("never"); !errors.Is(err, ErrNotFound) {
			t.Errorf("LastVerified(never) = %v, want ErrNotFound", err)
		}

		// Empty store: empty maps, not errors.
		e := openStore(t)
		if m, err := e.LatestAll(); err != nil || len(m) != 0 {
			t.Errorf("LatestAll on empty store = %v, %v", m, err)
		}
		if m, err := e.LastVerifiedAll(); err != nil || len(m) != 0 {
			t.Errorf("LastVerifiedAll on empty store = %v, %v", m, err)
		}
	})
}

func TestQueriesUseIndexes(t *testing.T) {
	s := openStore(t)
	for _, q := range []struct{ sql, index string }{
		{`SELECT id FROM revisions WHERE server = 'a' ORDER BY id DESC LIMIT 5`, "revisions_server_id"},
		{`SELECT max(id) FROM revisions GROUP BY server`, "revisions_server_id"},
		{`SELECT max(id) FROM revisions WHERE outcome = 'verified' GROUP BY server`, "revisions_outcome_server_id"},
		{`SELECT id FROM revisions WHERE outcome = 'verified' AND server = 'a' ORDER BY id DESC LIMIT 1`, "revisions_outcome_server_id"},
		{`UPDATE revisions SET outcome = 'interrupted' WHERE outcome = 'pending'`, "revisions_outcome_server_id"},
	} {
		rows, err := s.db.Query(`EXPLAIN QUERY PLAN ` + q.sql)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		if p := fmt.Sprint(plan); !bytes.Contains([]byte(p), []byte(q.index)) {
			t.Errorf("%s\n plan %s does not use %s", q.sql, p, q.index)
		}
	}
}

func TestMarkInterrupted(t *testing.T) {
	backends(t, func(t *testing.T) {
		s := openStore(t)
		p1 := mustBegin(t, s, Revision{Server: "a"})
		p2 := mustBegin(t, s, Revision{Server: "b", Message: "rolling out 3 replicas"})
		v := mustBegin(t, s, Revision{Server: "c"})
		mustFinish(t, s, v, OutcomeVerified)

		at := time.Date(2026, 1, 2, 3, 4, 5, 6, time.Local)
		n, err := s.MarkInterrupted(at)
		if err != nil || n != 2 {
			t.Fatalf("MarkInterrupted = %d, %v; want 2", n, err)
		}
		for id, msg := range map[int64]string{p1: interruptedMessage, p2: "rolling out 3 replicas"} {
			r, err := s.Revision(id)
			if err != nil {
				t.Fatal(err)
			}
			if r.Outcome != OutcomeInterrupted || !r.FinishedAt.Equal(at) || r.Message != msg {
				t.Errorf("revision %d after MarkInterrupted: %+v", id, r)
			}
		}
		if r, _ := s.Revision(v); r.Outcome != OutcomeVerified {
			t.Errorf("verified revision became %s", r.Outcome)
		}
		if n, err := s.MarkInterrupted(at); err != nil || n != 0 {
			t.Errorf("second MarkInterrupted = %d, %v; want 0", n, err)
		}
	})
}
