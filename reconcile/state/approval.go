package state

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Decisions on a planned change.
const (
	Approved = "approved"
	Rejected = "rejected"
)

// Approval is a person's decision on one planned change of one server:
// approved (the change may be applied, once) or rejected (it is held, with
// the note as the reason). ChangeHash binds it to that change: a different
// change of the server (another version, other settings, from another
// revision) is not covered by it.
type Approval struct {
	ID             int64     `json:"id"`
	Server         string    `json:"server"`
	ChangeHash     string    `json:"change_hash"`
	Decision       string    `json:"decision"` // approved | rejected
	By             string    `json:"by"`
	Note           string    `json:"note,omitempty"`
	Action         string    `json:"action"` // the planned action: create, update, replace, scale, delete
	SourceRevision string    `json:"source_revision"`
	FromVersion    string    `json:"from_version,omitempty"`
	ToVersion      string    `json:"to_version,omitempty"`
	At             time.Time `json:"at"`
	// UsedAt is when an apply carried the approved change out, and
	// RevisionID the revision it recorded; zero while it waits.
	UsedAt     time.Time `json:"used_at,omitzero"`
	RevisionID int64     `json:"revision,omitempty"`
}

const approvalColumns = `id, server, change_hash, decision, decided_by, note, action, source_revision,
	from_version, to_version, decided_at, used_at, revision_id`

// RecordApproval stores a decision and returns its ID. A zero a.At means
// now; a.ID, a.UsedAt and a.RevisionID are ignored.
func (s *Store) RecordApproval(a Approval) (int64, error) {
	if a.Server == "" || a.ChangeHash == "" {
		return 0, errors.New("state: record approval: server and change hash are required")
	}
	if a.Decision != Approved && a.Decision != Rejected {
		return 0, fmt.Errorf("state: record approval: decision %q is neither approved nor rejected", a.Decision)
	}
	if a.At.IsZero() {
		a.At = s.now()
	}
	var id int64
	err := s.write(func(tx *txn) error {
		var err error
		id, err = tx.insertID(context.Background(), `INSERT INTO approvals
			(server, change_hash, decision, decided_by, note, action, source_revision, from_version, to_version, decided_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			a.Server, a.ChangeHash, a.Decision, a.By, a.Note, a.Action, a.SourceRevision, a.FromVersion, a.ToVersion, formatTime(a.At))
		return err
	})
	return id, s.wrapErr("record approval", err)
}

// OpenDecisions returns, by server and then by change hash, the newest
// decision on each change that no apply has used: what the planner goes by.
func (s *Store) OpenDecisions() (map[string]map[string]Approval, error) {
	list, err := s.queryApprovals(`SELECT ` + approvalColumns + ` FROM approvals
		WHERE id IN (SELECT max(id) FROM approvals GROUP BY server, change_hash) AND used_at IS NULL`)
	if err != nil {
		return nil, s.wrapErr("open decisions", err)
	}
	m := map[string]map[string]Approval{}
	for _, a := range list {
		if m[a.Server] == nil {
			m[a.Server] = map[string]Approval{}
		}
		m[a.Server][a.ChangeHash] = a
	}
	return m, nil
}

// UseApproval marks approval id as carried out by revision revisionID (0:
// none recorded) at at. It reports false when the approval was used
// already, or is not an approval: an approved change is applied once.
func (s *Store) UseApproval(id, revisionID int64, at time.Time) (bool, error) {
	var n int64
	var rev any
	if revisionID != 0 {
		rev = revisionID
	}
	err := s.write(func(tx *txn) error {
		res, err := tx.ExecContext(context.Background(), `UPDATE approvals SET used_at = ?, revision_id = ?
			WHERE id = ? AND decision = ? AND used_at IS NULL`, formatTime(at), rev, id, Approved)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n == 1, s.wrapErr("use approval", err)
}

// Approvals returns the decisions on server's changes (every server's when
// server is empty), newest first, at most limit (all when limit <= 0). An
// approval that was carried out names the revision that carried it out:
// who approved a revision is the approval whose RevisionID is its ID.
func (s *Store) Approvals(server string, limit int) ([]Approval, error) {
	q := `SELECT ` + approvalColumns + ` FROM approvals WHERE server = ? ORDER BY id DESC LIMIT ?`
	args := []any{server, s.limit(limit)}
	if server == "" {
		q = `SELECT ` + approvalColumns + ` FROM approvals ORDER BY id DESC LIMIT ?`
		args = args[1:]
	}
	list, err := s.queryApprovals(q, args...)
	return list, s.wrapErr("approvals", err)
}

// ApprovalOf returns the approval a revision carried out, or ErrNotFound
// (the change needed none, or was applied before approvals existed).
func (s *Store) ApprovalOf(revisionID int64) (*Approval, error) {
	list, err := s.queryApprovals(`SELECT `+approvalColumns+` FROM approvals WHERE revision_id = ? ORDER BY id DESC LIMIT 1`, revisionID)
	if err != nil {
		return nil, s.wrapErr("approval of a revision", err)
	}
	if len(list) == 0 {
		return nil, fmt.Errorf("state: approval of revision %d: %w", revisionID, ErrNotFound)
	}
	return &list[0], nil
}

func (s *Store) queryApprovals(q string, args ...any) ([]Approval, error) {
	rows, err := s.queryContext(context.Background(), q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Approval
	for rows.Next() {
		var (
			a    Approval
			at   string
			used sql.NullString
			rev  sql.NullInt64
		)
		if err := rows.Scan(&a.ID, &a.Server, &a.ChangeHash, &a.Decision, &a.By, &a.Note, &a.Action, &a.SourceRevision,
			&a.FromVersion, &a.ToVersion, &at, &used, &rev); err != nil {
			return nil, err
		}
		if a.At, err = parseTime(at); err != nil {
			return nil, err
		}
		if a.UsedAt, err = parseNullTime(used); err != nil {
			return nil, err
		}
		a.RevisionID = rev.Int64
		out = append(out, a)
	}
	return out, rows.Err()
}
