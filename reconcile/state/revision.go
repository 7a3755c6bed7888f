package state

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Outcome is where a revision ended up.
type Outcome string

const (
	OutcomePending     Outcome = "pending"     // being applied
	OutcomeVerified    Outcome = "verified"    // applied and verified
	OutcomeFailed      Outcome = "failed"      // verification or apply failed
	OutcomeRolledBack  Outcome = "rolled-back" // failed, then the previous revision was restored
	OutcomeDeleted     Outcome = "deleted"     // the server was removed (pruned)
	OutcomeInterrupted Outcome = "interrupted" // tend died while it was pending
)

// Valid reports whether o is one of the outcomes above.
func (o Outcome) Valid() bool {
	switch o {
	case OutcomePending, OutcomeVerified, OutcomeFailed, OutcomeRolledBack, OutcomeDeleted, OutcomeInterrupted:
		return true
	}
	return false
}

// Revision is one revision tend applied to one server.
type Revision struct {
	ID             int64     `json:"revision"`
	Server         string    `json:"server"`
	SourceRevision string    `json:"source_revision"` // git commit or dir-<hash>
	SpecHash       string    `json:"spec_hash"`
	Version        string    `json:"version"`
	Spec           []byte    `json:"-"`       // the server's desired spec as JSON, secrets already redacted by the caller
	Trigger        string    `json:"trigger"` // "apply", "rollback", "auto-rollback", "retry", "drift"
	Outcome        Outcome   `json:"outcome"`
	Message        string    `json:"message"`
	ApplyID        string    `json:"apply_id"` // groups the revisions of one apply
	StartedAt      time.Time `json:"started_at"`
	FinishedAt     time.Time `json:"finished_at"` // zero while pending
}

// BeginRevision records that r is being applied and returns its ID. r.ID,
// r.Outcome and r.FinishedAt are ignored: the revision is inserted pending,
// unfinished. A zero r.StartedAt means now.
func (s *Store) BeginRevision(r Revision) (int64, error) {
	if r.Server == "" {
		return 0, errors.New("state: begin revision: empty server name")
	}
	if r.StartedAt.IsZero() {
		r.StartedAt = s.now()
	}
	var id int64
	err := s.write(func(tx *txn) error {
		var err error
		id, err = tx.insertID(context.Background(), `INSERT INTO revisions
			(server, source_revision, spec_hash, version, spec, triggered_by, outcome, message, apply_id, started_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			r.Server, r.SourceRevision, r.SpecHash, r.Version, r.Spec, r.Trigger,
			string(OutcomePending), r.Message, r.ApplyID, formatTime(r.StartedAt))
		return err
	})
	if err != nil {
		return 0, s.wrapErr("begin revision", err)
	}
	return id, nil
}

// FinishRevision sets the outcome, message and finish time of revision id
// (a zero at means now). It may be called again on a finished revision, as
// when a failed revision becomes rolled-back once the previous one is
// restored. It returns ErrNotFound when there is no such revision.
func (s *Store) FinishRevision(id int64, o Outcome, msg string, at time.Time) error {
	if !o.Valid() || o == OutcomePending {
		return fmt.Errorf("state: finish revision %d: invalid outcome %q", id, o)
	}
	if at.IsZero() {
		at = s.now()
	}
	err := s.write(func(tx *txn) error {
		res, err := tx.ExecContext(context.Background(),
			`UPDATE revisions SET outcome = ?, message = ?, finished_at = ? WHERE id = ?`,
			string(o), msg, formatTime(at), id)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err == nil && n == 0 {
			err = ErrNotFound
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("state: finish revision %d: %w", id, err)
	}
	return nil
}

// interruptedMessage is the message MarkInterrupted gives a pending revision
// that had none.
const interruptedMessage = "tend stopped while this revision was being applied"

// MarkInterrupted turns every pending revision into an interrupted one,
// finished at at (zero means now), and returns how many there were. It is
// meant for the tend that has just taken over a stale lock: what was pending
// then belonged to the tend that died. A revision's message is kept, or set
// to say what happened when it was empty.
func (s *Store) MarkInterrupted(at time.Time) (int, error) {
	if at.IsZero() {
		at = s.now()
	}
	var n int64
	err := s.write(func(tx *txn) error {
		res, err := tx.ExecContext(context.Background(), `UPDATE revisions
			SET outcome = ?, finished_at = ?, message = CASE WHEN message = '' THEN ? ELSE message END
			WHERE outcome = ?`,
			string(OutcomeInterrupted), formatTime(at), interruptedMessage, string(OutcomePending))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, s.wrapErr("mark interrupted", err)
	}
	return int(n), nil
}

const revisionColumns = `id, server, source_revision, spec_hash, version, spec, triggered_by,
	outcome, message, apply_id, started_at, finished_at`

// History returns the revisions of server, newest (highest ID) first, at most
// limit of them. An empty server means every server; limit <= 0 means all.
func (s *Store) History(server string, limit int) ([]Revision, error) {
	q := `SELECT ` + revisionColumns + ` FROM revisions WHERE server = ? ORDER BY id DESC LIMIT ?`
	args := []any{server, s.limit(limit)}
	if server == "" {
		q = `SELECT ` + revisionColumns + ` FROM revisions ORDER BY id DESC LIMIT ?`
		args = args[1:]
	}
	revs, err := s.queryRevisions(q, args...)
	if err != nil {
		return nil, s.wrapErr("history", err)
	}
	return revs, nil
}

// Revision returns the revision with this ID, or ErrNotFound.
func (s *Store) Revision(id int64) (*Revision, error) {
	revs, err := s.queryRevisions(`SELECT `+revisionColumns+` FROM revisions WHERE id = ?`, id)
	if err != nil {
		return nil, fmt.Errorf("state: revision %d: %w", id, err)
	}
	if len(revs) == 0 {
		return nil, fmt.Errorf("state: revision %d: %w", id, ErrNotFound)
	}
	return &revs[0], nil
}

// LatestAll returns the newest revision of every server that has one, keyed
// by server name, whatever its outcome.
func (s *Store) LatestAll() (map[string]*Revision, error) {
	m, err := s.queryRevisionMap(`SELECT ` + revisionColumns + ` FROM revisions
		WHERE id IN (SELECT max(id) FROM revisions GROUP BY server)`)
	return m, s.wrapErr("latest revisions", err)
}

// LastVerifiedAll returns the newest verified revision of every server that
// has one, keyed by server name.
func (s *Store) LastVerifiedAll() (map[string]*Revision, error) {
	m, err := s.queryRevisionMap(`SELECT `+revisionColumns+` FROM revisions
		WHERE id IN (SELECT max(id) FROM revisions WHERE outcome = ? GROUP BY server)`,
		string(OutcomeVerified))
	return m, s.wrapErr("last verified revisions", err)
}

// LastVerified returns the newest verified revision of server, or
// ErrNotFound when it has none.
func (s *Store) LastVerified(server string) (*Revision, error) {
	revs, err := s.queryRevisions(`SELECT `+revisionColumns+` FROM revisions
		WHERE outcome = ? AND server = ? ORDER BY id DESC LIMIT 1`, string(OutcomeVerified), server)
	if err != nil {
		return nil, fmt.Errorf("state: last verified revision of %s: %w", server, err)
	}
	if len(revs) == 0 {
		return nil, fmt.Errorf("state: last verified revision of %s: %w", server, ErrNotFound)
	}
	return &revs[0], nil
}

func (s *Store) queryRevisionMap(q string, args ...any) (map[string]*Revision, error) {
	revs, err := s.queryRevisions(q, args...)
	if err != nil {
		return nil, err
	}
	m := make(map[string]*Revision, len(revs))
	for i := range revs {
		m[revs[i].Server] = &revs[i]
	}
	return m, nil
}

func (s *Store) queryRevisions(q string, args ...any) ([]Revision, error) {
	rows, err := s.queryContext(context.Background(), q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var revs []Revision
	for rows.Next() {
		var (
			r        Revision
			outcome  string
			started  string
			finished sql.NullString
		)
		if err := rows.Scan(&r.ID, &r.Server, &r.SourceRevision, &r.SpecHash, &r.Version, &r.Spec,
			&r.Trigger, &outcome, &r.Message, &r.ApplyID, &started, &finished); err != nil {
			return nil, err
		}
		r.Outcome = Outcome(outcome)
		if r.StartedAt, err = parseTime(started); err != nil {
			return nil, err
		}
		if r.FinishedAt, err = parseNullTime(finished); err != nil {
			return nil, err
		}
		revs = append(revs, r)
	}
	return revs, rows.Err()
}
