package state

import (
	"testing"
	"time"
)

func TestHolds(t *testing.T) {
	backends(t, func(t *testing.T) {
		s := openStore(t)
		rev := mustBegin(t, s, Revision{Server: "web"})
		mustFinish(t, s, rev, OutcomeFailed)
		at := time.Date(2026, 3, 4, 5, 6, 7, 8, time.FixedZone("X", -5*3600))

		h := Hold{Server: "web", SpecHash: "h1", SourceRevision: "c1", Version: "1.0", RevisionID: rev, Reason: "verify failed", At: at}
		if err := s.PutHold(h); err != nil {
			t.Fatal(err)
		}
		// Upsert: same server and hash replaces.
		h.Reason, h.SourceRevision = "verify failed again", "c2"
		if err := s.PutHold(h); err != nil {
			t.Fatal(err)
		}
		for _, other := range []Hold{
			{Server: "web", SpecHash: "h2", Reason: "apply failed"},
			{Server: "db", SpecHash: "h1", Reason: "deadline"},
		} {
			if err := s.PutHold(other); err != nil {
				t.Fatal(err)
			}
		}

		holds, err := s.Holds()
		if err != nil {
			t.Fatal(err)
		}
		if len(holds) != 2 || len(holds["web"]) != 2 || len(holds["db"]) != 1 {
			t.Fatalf("holds = %+v", holds)
		}
		got := holds["web"]["h1"]
		if got.Server != "web" || got.SpecHash != "h1" || got.SourceRevision != "c2" || got.Version != "1.0" ||
			got.RevisionID != rev || got.Reason != "verify failed again" || !got.At.Equal(at) || got.At.Location() != time.UTC {
			t.Errorf("hold = %+v", got)
		}
		if got := holds["web"]["h2"]; got.RevisionID != 0 || got.At.IsZero() {
			t.Errorf("hold without revision = %+v", got)
		}

		// A hold must point at a real revision (foreign keys are on).
		if err := s.PutHold(Hold{Server: "x", SpecHash: "h", RevisionID: 12345}); err == nil {
			t.Error("PutHold accepted a revision that does not exist")
		}
		if err := s.PutHold(Hold{Server: "x"}); err == nil {
			t.Error("PutHold accepted an empty spec hash")
		}

		if n, err := s.ClearHolds("web"); err != nil || n != 2 {
			t.Fatalf("ClearHolds(web) = %d, %v; want 2", n, err)
		}
		if n, err := s.ClearHolds("web"); err != nil || n != 0 {
			t.Fatalf("ClearHolds(web) again = %d, %v; want 0", n, err)
		}
		holds, err = s.Holds()
		if err != nil || len(holds) != 1 || len(holds["db"]) != 1 {
			t.Fatalf("holds after clear = %+v, %v", holds, err)
		}
		if n, err := s.ClearHolds(""); err != nil || n != 1 {
			t.Fatalf("ClearHolds(\"\") = %d, %v; want 1", n, err)
		}
		if holds, err := s.Holds(); err != nil || len(holds) != 0 {
			t.Fatalf("holds after clearing all = %+v, %v", holds, err)
		}
	})
}
