package reconcile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/robfig/cron/v3"
	"github.com/tendhq/tend/reconcile/backup"
	"github.com/tendhq/tend/reconcile/state"
	"github.com/tendhq/tend/spec"
)

// VerifyResult is one backup checked by VerifyBackups.
type VerifyResult struct {
	Backup state.Backup
	Err    error
}

// VerifyBackups re-reads the archives of the catalog's good and damaged
// backups (of server, or all) and checks their size and sha256, marking each
// damaged or ok again in the catalog.
func (e *Engine) VerifyBackups(ctx context.Context, cfg *spec.Config, server string) ([]VerifyResult, error) {
	rows, err := e.Store.Backups(server, 0)
	if err != nil {
		return nil, err
	}
	var out []VerifyResult
	for _, b := range rows {
		if b.Outcome == state.BackupFailed {
			continue
		}
		r := VerifyResult{Backup: b}
		r.Err = e.verifyOne(ctx, cfg, &r.Backup)
		out = append(out, r)
	}
	return out, nil
}

func (e *Engine) verifyOne(ctx context.Context, cfg *spec.Config, b *state.Backup) error {
	m, err := manifestOf(b)
	if err != nil {
		return err
	}
	var dest backup.Destination
	if s := cfg.Servers[b.Server]; s != nil && s.Backup != nil {
		dest, err = e.destinationOf(s, b)
	} else {
		dest, err = backup.Parse(b.Destination)
	}
	if err != nil {
		return fmt.Errorf("cannot reach %s: %w", b.Destination, err)
	}
	err = backup.Verify(ctx, dest, m)
	if errors.Is(err, backup.ErrNotExist) {
		err = fmt.Errorf("the archive %s is missing at %s", m.Archive, dest.URL())
		b.Outcome, b.Error = state.BackupDamaged, err.Error()
		_ = e.Store.SetBackupOutcome(b.ID, state.BackupDamaged, err.Error())
		return err
	}
	switch {
	case err == nil && b.Outcome != state.BackupOK:
		b.Outcome, b.Error = state.BackupOK, ""
		_ = e.Store.SetBackupOutcome(b.ID, state.BackupOK, "")
	case err != nil:
		if _, ok := err.(*backup.DamagedError); ok {
			b.Outcome, b.Error = state.BackupDamaged, err.Error()
			_ = e.Store.SetBackupOutcome(b.ID, state.BackupDamaged, err.Error())
		}
	}
	if err != nil {
		if s := cfg.Servers[b.Server]; s != nil {
			return fmt.Errorf("%s", redactBackup(s, err.Error()))
		}
	}
	return err
}

// SyncBackups records in the catalog every backup whose manifest is at the
// destination of a server's backup block (server's, or every server's) and
// that the catalog does not know: how a tend with an empty state directory
// finds the backups of a lost machine again. Destinations are only read.
func (e *Engine) SyncBackups(ctx context.Context, cfg *spec.Config, server string) (added, known int, errs []error) {
	names := cfg.ServerNames()
	if server != "" {
		names = []string{server}
	}
	for _, n := range names {
		s := cfg.Servers[n]
		if s == nil || s.Backup == nil {
			if server != "" {
				errs = append(errs, fmt.Errorf("%s has no backup block in the desired state", n))
			}
			continue
		}
		dest, err := backup.Resolve(s.Backup, e.ProvEnv.StateDir)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %s", n, redactBackup(s, err.Error())))
			continue
		}
		found, ferrs := backup.Sync(ctx, dest, n)
		for _, err := range ferrs {
			errs = append(errs, fmt.Errorf("%s", redactBackup(s, err.Error())))
		}
		for _, m := range found {
			if _, err := e.Store.GetBackup(m.ID); err == nil {
				known++
				continue
			}
			raw, _ := json.Marshal(m)
			row := state.Backup{
				ID: m.ID, Server: m.Server, Trigger: m.Trigger, RevisionID: e.syncedRevisionID(m), SourceRevision: m.Revision,
				Version: m.Version, SpecHash: m.SpecHash, Replica: m.Replica, Destination: dest.URL(), Archive: m.Archive,
				Size: m.Size, SHA256: m.SHA256, Encrypted: m.Encrypted, Outcome: state.BackupOK, Manifest: raw,
				StartedAt: m.CreatedAt, FinishedAt: m.CreatedAt,
			}
			if err := e.Store.PutBackup(row); err != nil {
				errs = append(errs, err)
				continue
			}
			added++
		}
	}
	return added, known, errs
}

// syncedRevisionID is the revision a synced backup belongs to in this
// store: the manifest's, when this store's revision of that ID is of the
// server and was begun before the backup was made; else 0. A manifest's
// revision ID is that of the store that made it: in a new store the same
// ID names another revision, whose rollback must not restore this backup.
func (e *Engine) syncedRevisionID(m *backup.Manifest) int64 {
	if m.RevisionID == 0 {
		return 0
	}
	rev, err := e.Store.Revision(m.RevisionID)
	if err != nil || rev.Server != m.Server || rev.StartedAt.After(m.CreatedAt) ||
		!rev.FinishedAt.IsZero() && rev.FinishedAt.Before(m.CreatedAt) {
		return 0
	}
	return m.RevisionID
}

// BackupStatus is a server's backups as tend status shows them.
type BackupStatus struct {
	LastGood        *state.Backup `json:"last_good,omitempty"`
	Last            *state.Backup `json:"last,omitempty"`
	Next            time.Time     `json:"next,omitempty"`
	LastDrill       *state.Drill  `json:"last_drill,omitempty"`
	LastPassedDrill *state.Drill  `json:"last_passed_drill,omitempty"`
	NextDrill       time.Time     `json:"next_drill,omitempty"`
}

// backupStatuses reads every server's BackupStatus from the store.
func (e *Engine) backupStatuses(cfg *spec.Config) (map[string]*BackupStatus, error) {
	good, last, err := e.Store.LatestBackups()
	if err != nil {
		return nil, err
	}
	drills, passed, err := e.Store.LatestDrills()
	if err != nil {
		return nil, err
	}
	out := map[string]*BackupStatus{}
	for name, s := range cfg.Servers {
		if s.Backup == nil && good[name] == nil {
			continue
		}
		st := &BackupStatus{LastGood: good[name], Last: last[name], LastDrill: drills[name], LastPassedDrill: passed[name]}
		if s.Backup != nil {
			st.Next = NextRun(s.Backup.Schedule, e.now())
			st.NextDrill = NextRun(s.Backup.Drill, e.now())
		}
		out[name] = st
	}
	return out, nil
}

var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// NextRun is when a cron expression fires next after now (zero for "" or
// an expression that does not parse).
func NextRun(expr string, now time.Time) time.Time {
	if expr == "" {
		return time.Time{}
	}
	sched, err := cronParser.Parse(expr)
	if err != nil {
		return time.Time{}
	}
	return sched.Next(now)
}
