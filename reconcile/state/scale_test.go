package state

import (
	"testing"
	"time"
)

func TestScaleDecisions(t *testing.T) {
	backends(t, func(t *testing.T) {
		s := openStore(t)
		t0 := time.Date(2026, 12, 6, 3, 0, 0, 0, time.UTC)
		id, err := s.BeginScale(
			ScaleDecision{Server: "notes", FromReplicas: 2, ToReplicas: 4, Reason: "cpu 140% of 70%", Inputs: []byte(`{"x":1}`), DecidedAt: t0},
			ScaleTarget{Server: "notes", Provider: "process", Replicas: 4, Min: 1, Max: 6})
		if err != nil {
			t.Fatal(err)
		}
		ts, err := s.ScaleTargets()
		if err != nil {
			t.Fatal(err)
		}
		if got := ts["notes"]; got.Replicas != 4 || got.Min != 1 || got.Max != 6 || got.Provider != "process" || got.DecisionID != id || !got.UpdatedAt.Equal(t0) {
			t.Fatalf("target after BeginScale = %+v", got)
		}
		// A failed scale puts the target back to the last good count.
		if err := s.FinishScale(id, ScaleFailed, "replica 3 failed its checks", 7, 2, t0.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		ts, _ = s.ScaleTargets()
		if ts["notes"].Replicas != 2 {
			t.Fatalf("target after a failed scale = %d, want 2", ts["notes"].Replicas)
		}
		if _, err := s.RecordScale(ScaleDecision{Server: "notes", FromReplicas: 2, ToReplicas: 4, Outcome: ScaleHeld, Reason: "again", Message: "held", DecidedAt: t0.Add(2 * time.Minute)}); err != nil {
			t.Fatal(err)
		}
		id3, err := s.BeginScale(ScaleDecision{Server: "db", FromReplicas: 1, ToReplicas: 2, DecidedAt: t0}, ScaleTarget{Server: "db", Provider: "docker", Replicas: 2, Min: 1, Max: 3})
		if err != nil {
			t.Fatal(err)
		}
		if n, err := s.MarkScalesInterrupted(t0.Add(time.Hour)); err != nil || n != 1 {
			t.Fatalf("MarkScalesInterrupted = %d, %v; want 1", n, err)
		}
		list, err := s.ScaleDecisions("notes", 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 2 || list[0].Outcome != ScaleHeld || list[1].Outcome != ScaleFailed || list[1].RevisionID != 7 ||
			list[1].Message != "replica 3 failed its checks" || string(list[1].Inputs) != `{"x":1}` || !list[1].FinishedAt.Equal(t0.Add(time.Minute)) {
			t.Fatalf("ScaleDecisions(notes) = %+v", list)
		}
		latest, err := s.LatestScaleDecisions()
		if err != nil {
			t.Fatal(err)
		}
		if latest["db"].ID != id3 || latest["db"].Outcome != ScaleInterrupted || latest["notes"].Outcome != ScaleHeld {
			t.Fatalf("LatestScaleDecisions = %+v", latest)
		}
		// An interrupted scale keeps its target: the next pass converges to it.
		ts, _ = s.ScaleTargets()
		if ts["db"].Replicas != 2 {
			t.Fatalf("db target = %+v, want 2 replicas", ts["db"])
		}
		if err := s.DeleteScaleTarget("db"); err != nil {
			t.Fatal(err)
		}
		ts, _ = s.ScaleTargets()
		if _, ok := ts["db"]; ok || len(ts) != 1 {
			t.Fatalf("targets after delete = %+v", ts)
		}
		if err := s.FinishScale(9999, ScaleApplied, "", 0, -1, t0); err == nil {
			t.Fatal("FinishScale of an unknown decision: no error")
		}
	})
}
