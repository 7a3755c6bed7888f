package state

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// Hold is a revision of a server that failed verification, held so that the
// engine does not apply it again until someone runs `tend retry`.
type Hold struct {
	Server         string    `json:"server"`
	SpecHash       string    `json:"spec_hash"`
	SourceRevision string    `json:"source_revision"`
	Version        string    `json:"version"`
	RevisionID     int64     `json:"revision"` // the failed revision; 0 for none
	Reason         string    `json:"reason"`
	At             time.Time `json:"at"`
}

// PutHold records h, replacing the hold of the same server and spec hash. A
// zero h.At means now. h.RevisionID, when not 0, must be a revision of the
// store.
func (s *Store) PutHold(h Hold) error {
	if h.Server == "" || h.SpecHash == "" {
		return errors.New("state: put hold: server and spec hash are required")
	}
	if h.At.IsZero() {
		h.At = s.now()
	}
	var revID any
	if h.RevisionID != 0 {
		revID = h.RevisionID
	}
	err := s.write(func(tx *txn) error {
		_, err := tx.ExecContext(context.Background(), `INSERT INTO holds
			(server, spec_hash, source_revision, version, revision_id, reason, held_at)
			VALUES (?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (server, spec_hash) DO UPDATE SET
				source_revision = excluded.source_revision,
				version = excluded.version,
				revision_id = excluded.revision_id,
				reason = excluded.reason,
				held_at = excluded.held_at`,
			h.Server, h.SpecHash, h.SourceRevision, h.Version, revID, h.Reason, formatTime(h.At))
		return err
	})
	return s.wrapErr("put hold", err)
}

// Holds returns every hold, by server and then by spec hash.
func (s *Store) Holds() (map[string]map[string]Hold, error) {
	rows, err := s.queryContext(context.Background(), `SELECT
		server, spec_hash, source_revision, version, revision_id, reason, held_at FROM holds`)
	if err != nil {
		return nil, s.wrapErr("holds", err)
	}
	defer rows.Close()
	m := map[string]map[string]Hold{}
	for rows.Next() {
		var (
			h     Hold
			revID sql.NullInt64
			at    string
		)
		if err := rows.Scan(&h.Server, &h.SpecHash, &h.SourceRevision, &h.Version, &revID, &h.Reason, &at); err != nil {
			return nil, s.wrapErr("holds", err)
		}
		h.RevisionID = revID.Int64
		if h.At, err = parseTime(at); err != nil {
			return nil, s.wrapErr("holds", err)
		}
		if m[h.Server] == nil {
			m[h.Server] = map[string]Hold{}
		}
		m[h.Server][h.SpecHash] = h
	}
	if err := rows.Err(); err != nil {
		return nil, s.wrapErr("holds", err)
	}
	return m, nil
}

// ClearHolds removes every hold of server (of every server when server is
// empty), for `tend retry`, and returns how many it removed.
func (s *Store) ClearHolds(server string) (int, error) {
	var n int64
	err := s.write(func(tx *txn) error {
		var (
			res sql.Result
			err error
		)
		if server == "" {
			res, err = tx.ExecContext(context.Background(), `DELETE FROM holds`)
		} else {
			res, err = tx.ExecContext(context.Background(), `DELETE FROM holds WHERE server = ?`, server)
		}
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, s.wrapErr("clear holds", err)
	}
	return int(n), nil
}
