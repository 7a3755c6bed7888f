package state

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Backup outcomes.
const (
	BackupOK      = "ok"
	BackupFailed  = "failed"
	BackupDamaged = "damaged" // its archive no longer matches its sha256
)

// Backup triggers.
const (
	TriggerSchedule   = "schedule"
	TriggerManual     = "manual"
	TriggerPreUpgrade = "pre-upgrade"
	TriggerPreRestore = "pre-restore"
)

// Backup is one row of the catalog.
type Backup struct {
	ID             string    `json:"id"`
	Server         string    `json:"server"`
	Trigger        string    `json:"trigger"`
	RevisionID     int64     `json:"revision_id,omitempty"`
	SourceRevision string    `json:"source_revision"`
	Version        string    `json:"version"`
	SpecHash       string    `json:"spec_hash"`
	Replica        int       `json:"replica"`
	Destination    string    `json:"destination"`
	Archive        string    `json:"archive,omitempty"`
	Size           int64     `json:"size"`
	SHA256         string    `json:"sha256,omitempty"`
	Encrypted      bool      `json:"encrypted,omitempty"`
	Outcome        string    `json:"outcome"`
	Error          string    `json:"error,omitempty"`
	Manifest       []byte    `json:"-"`
	StartedAt      time.Time `json:"started_at"`
	FinishedAt     time.Time `json:"finished_at"`
}

// Duration is how long the backup took.
func (b *Backup) Duration() time.Duration { return b.FinishedAt.Sub(b.StartedAt) }

// PutBackup records a backup, replacing the row of the same ID.
func (s *Store) PutBackup(b Backup) error {
	if b.ID == "" || b.Server == "" {
		return errors.New("state: put backup: an id and a server are required")
	}
	var rev any
	if b.RevisionID != 0 {
		rev = b.RevisionID
	}
	err := s.write(func(tx *txn) error {
		_, err := tx.ExecContext(context.Background(), `INSERT INTO backups
			(id, server, trigger, revision_id, source_revision, version, spec_hash, replica, destination, archive,
			 size, sha256, encrypted, outcome, error, manifest, started_at, finished_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET outcome = excluded.outcome, error = excluded.error,
				destination = excluded.destination`,
			b.ID, b.Server, b.Trigger, rev, b.SourceRevision, b.Version, b.SpecHash, b.Replica, b.Destination, b.Archive,
			b.Size, b.SHA256, boolInt(b.Encrypted), b.Outcome, b.Error, b.Manifest, formatTime(b.StartedAt), formatTime(b.FinishedAt))
		return err
	})
	return s.wrapErr("put backup", err)
}

// SetBackupOutcome changes the outcome (and error) of a backup: a
// verification found it damaged, or good again.
func (s *Store) SetBackupOutcome(id, outcome, msg string) error {
	err := s.write(func(tx *txn) error {
		res, err := tx.ExecContext(context.Background(), `UPDATE backups SET outcome = ?, error = ? WHERE id = ?`, outcome, msg, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		return nil
	})
	return s.wrapErr("set backup outcome", err)
}

// DeleteBackup removes a backup from the catalog.
func (s *Store) DeleteBackup(id string) error {
	err := s.write(func(tx *txn) error {
		_, err := tx.ExecContext(context.Background(), `DELETE FROM backups WHERE id = ?`, id)
		return err
	})
	return s.wrapErr("delete backup", err)
}

const backupColumns = `id, server, trigger, revision_id, source_revision, version, spec_hash, replica, destination,
	archive, size, sha256, encrypted, outcome, error, manifest, started_at, finished_at`

// Backups lists the catalog, newest first: every server's when server is
// "", at most limit rows (limit <= 0: all).
func (s *Store) Backups(server string, limit int) ([]Backup, error) {
	q := `SELECT ` + backupColumns + ` FROM backups WHERE (? = '' OR server = ?) ORDER BY started_at DESC, id DESC LIMIT ?`
	out, err := s.queryBackups(q, server, server, s.limit(limit))
	return out, s.wrapErr("backups", err)
}

// GetBackup returns one backup, or ErrNotFound.
func (s *Store) GetBackup(id string) (*Backup, error) {
	out, err := s.queryBackups(`SELECT `+backupColumns+` FROM backups WHERE id = ?`, id)
	if err != nil {
		return nil, s.wrapErr("get backup", err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("state: backup %s: %w", id, ErrNotFound)
	}
	return &out[0], nil
}

// LatestBackups returns, for every server that has one, its newest good
// backup and its newest backup of any outcome.
func (s *Store) LatestBackups() (good, any map[string]*Backup, err error) {
	all, err := s.queryBackups(`SELECT ` + backupColumns + ` FROM backups ORDER BY started_at DESC, id DESC`)
	if err != nil {
		return nil, nil, s.wrapErr("latest backups", err)
	}
	good, any = map[string]*Backup{}, map[string]*Backup{}
	for i := range all {
		b := &all[i]
		if _, ok := any[b.Server]; !ok {
			any[b.Server] = b
		}
		if _, ok := good[b.Server]; !ok && b.Outcome == BackupOK {
			good[b.Server] = b
		}
	}
	return good, any, nil
}

// PreUpgradeBackup returns the good pre-upgrade backup taken for revision
// id, or ErrNotFound.
func (s *Store) PreUpgradeBackup(revisionID int64) (*Backup, error) {
	out, err := s.queryBackups(`SELECT `+backupColumns+` FROM backups
		WHERE revision_id = ? AND trigger = ? AND outcome = ? ORDER BY started_at DESC LIMIT 1`,
		revisionID, TriggerPreUpgrade, BackupOK)
	if err != nil {
		return nil, s.wrapErr("pre-upgrade backup", err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("state: pre-upgrade backup of revision %d: %w", revisionID, ErrNotFound)
	}
	return &out[0], nil
}

func (s *Store) queryBackups(q string, args ...any) ([]Backup, error) {
	rows, err := s.queryContext(context.Background(), q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Backup
	for rows.Next() {
		var b Backup
		var rev sql.NullInt64
		var started, finished string
		if err := rows.Scan(&b.ID, &b.Server, &b.Trigger, &rev, &b.SourceRevision, &b.Version, &b.SpecHash, &b.Replica,
			&b.Destination, &b.Archive, &b.Size, &b.SHA256, &b.Encrypted, &b.Outcome, &b.Error, &b.Manifest, &started, &finished); err != nil {
			return nil, err
		}
		b.RevisionID = rev.Int64
		if b.StartedAt, err = parseTime(started); err != nil {
			return nil, err
		}
		if b.FinishedAt, err = parseTime(finished); err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, rows.Err()
}

// Drill is one restore drill.
type Drill struct {
	ID         int64     `json:"id"`
	Server     string    `json:"server"`
	BackupID   string    `json:"backup_id"`
	Outcome    string    `json:"outcome"` // passed | failed
	Message    string    `json:"message,omitempty"`
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at"`
}

// Drill outcomes.
const (
	DrillPassed = "passed"
	DrillFailed = "failed"
)

// PutDrill records a drill and returns its ID.
func (s *Store) PutDrill(d Drill) (int64, error) {
	var id int64
	err := s.write(func(tx *txn) error {
		var err error
		id, err = tx.insertID(context.Background(), `INSERT INTO drills (server, backup_id, outcome, message, started_at, finished_at)
			VALUES (?, ?, ?, ?, ?, ?)`, d.Server, d.BackupID, d.Outcome, d.Message, formatTime(d.StartedAt), formatTime(d.FinishedAt))
		return err
	})
	return id, s.wrapErr("put drill", err)
}

// LatestDrills returns every server's newest drill and newest passed drill.
func (s *Store) LatestDrills() (last, passed map[string]*Drill, err error) {
	rows, err := s.queryContext(context.Background(),
		`SELECT id, server, backup_id, outcome, message, started_at, finished_at FROM drills ORDER BY id DESC`)
	if err != nil {
		return nil, nil, s.wrapErr("drills", err)
	}
	defer rows.Close()
	last, passed = map[string]*Drill{}, map[string]*Drill{}
	for rows.Next() {
		var d Drill
		var started, finished string
		if err := rows.Scan(&d.ID, &d.Server, &d.BackupID, &d.Outcome, &d.Message, &started, &finished); err != nil {
			return nil, nil, s.wrapErr("drills", err)
		}
		d.StartedAt, _ = parseTime(started)
		d.FinishedAt, _ = parseTime(finished)
		if _, ok := last[d.Server]; !ok {
			last[d.Server] = &d
		}
		if _, ok := passed[d.Server]; !ok && d.Outcome == DrillPassed {
			dd := d
			passed[d.Server] = &dd
		}
	}
	return last, passed, s.wrapErr("drills", rows.Err())
}

// MarkMigrated records that revision id ran its migrate hook.
func (s *Store) MarkMigrated(id int64) error {
	err := s.write(func(tx *txn) error {
		_, err := tx.ExecContext(context.Background(), `UPDATE revisions SET migrated = 1 WHERE id = ?`, id)
		return err
	})
	return s.wrapErr("mark migrated", err)
}

// MigratedSince returns the revisions of server newer than afterID whose
// migrate hook ran, oldest first.
func (s *Store) MigratedSince(server string, afterID int64) ([]Revision, error) {
	out, err := s.queryRevisions(`SELECT `+revisionColumns+` FROM revisions
		WHERE server = ? AND id > ? AND migrated = 1 ORDER BY id`, server, afterID)
	return out, s.wrapErr("migrated revisions", err)
}
