package state

import (
	"errors"
	"testing"
	"time"
)

func TestBackupCatalog(t *testing.T) {
	backends(t, func(t *testing.T) {
		s := openStore(t)
		t0 := time.Date(2026, 12, 6, 3, 0, 0, 0, time.UTC)
		id, err := s.BeginRevision(Revision{Server: "notes", Version: "1.1.0"})
		if err != nil {
			t.Fatal(err)
		}
		rows := []Backup{
			{ID: "b1", Server: "notes", Trigger: TriggerSchedule, Outcome: BackupOK, Size: 10, SHA256: "aa", StartedAt: t0, FinishedAt: t0.Add(time.Second)},
			{ID: "b2", Server: "notes", Trigger: TriggerPreUpgrade, RevisionID: id, Outcome: BackupOK, StartedAt: t0.Add(time.Hour), FinishedAt: t0.Add(time.Hour)},
			{ID: "b3", Server: "notes", Trigger: TriggerSchedule, Outcome: BackupFailed, Error: "disk full", StartedAt: t0.Add(2 * time.Hour), FinishedAt: t0.Add(2 * time.Hour)},
			{ID: "c1", Server: "db", Trigger: TriggerManual, Outcome: BackupOK, StartedAt: t0, FinishedAt: t0},
		}
		for _, b := range rows {
			if err := s.PutBackup(b); err != nil {
				t.Fatal(err)
			}
		}
		got, err := s.Backups("notes", 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 3 || got[0].ID != "b3" || got[2].ID != "b1" {
			t.Fatalf("Backups(notes) = %+v, want b3 b2 b1", got)
		}
		if got[2].Size != 10 || got[2].SHA256 != "aa" || got[2].Duration() != time.Second {
			t.Errorf("b1 read back as %+v", got[2])
		}
		good, last, err := s.LatestBackups()
		if err != nil {
			t.Fatal(err)
		}
		if good["notes"].ID != "b2" || last["notes"].ID != "b3" || good["db"].ID != "c1" {
			t.Errorf("LatestBackups good=%v last=%v", good["notes"].ID, last["notes"].ID)
		}
		pre, err := s.PreUpgradeBackup(id)
		if err != nil || pre.ID != "b2" {
			t.Errorf("PreUpgradeBackup(%d) = %v, %v; want b2", id, pre, err)
		}
		if _, err := s.PreUpgradeBackup(id + 1); !errors.Is(err, ErrNotFound) {
			t.Errorf("PreUpgradeBackup of another revision: %v, want ErrNotFound", err)
		}
		if err := s.SetBackupOutcome("b1", BackupDamaged, "sha256 mismatch"); err != nil {
			t.Fatal(err)
		}
		if b, _ := s.GetBackup("b1"); b.Outcome != BackupDamaged || b.Error != "sha256 mismatch" {
			t.Errorf("after SetBackupOutcome: %+v", b)
		}
		if err := s.SetBackupOutcome("nope", BackupOK, ""); !errors.Is(err, ErrNotFound) {
			t.Errorf("SetBackupOutcome of a missing backup: %v", err)
		}
		if err := s.DeleteBackup("b1"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetBackup("b1"); !errors.Is(err, ErrNotFound) {
			t.Errorf("GetBackup after delete: %v", err)
		}

		if err := s.MarkMigrated(id); err != nil {
			t.Fatal(err)
		}
		mig, err := s.MigratedSince("notes", 0)
		if err != nil || len(mig) != 1 || mig[0].ID != id {
			t.Errorf("MigratedSince = %v, %v", mig, err)
		}
		if mig, _ := s.MigratedSince("notes", id); len(mig) != 0 {
			t.Errorf("MigratedSince(after the migrated revision) = %v, want none", mig)
		}

		if _, err := s.PutDrill(Drill{Server: "notes", BackupID: "b2", Outcome: DrillPassed, StartedAt: t0, FinishedAt: t0}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.PutDrill(Drill{Server: "notes", BackupID: "b2", Outcome: DrillFailed, Message: "check failed", StartedAt: t0, FinishedAt: t0}); err != nil {
			t.Fatal(err)
		}
		lastD, passed, err := s.LatestDrills()
		if err != nil {
			t.Fatal(err)
		}
		if lastD["notes"].Outcome != DrillFailed || passed["notes"].Outcome != DrillPassed {
			t.Errorf("LatestDrills last=%+v passed=%+v", lastD["notes"], passed["notes"])
		}
	})
}
