package state

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Contract is the API contract a server exposed when a revision was
// verified, as JSON (the reconcile/contract package owns its form).
type Contract struct {
	RevisionID int64     `json:"revision"`
	Server     string    `json:"server"`
	Version    string    `json:"version"`
	Contract   []byte    `json:"contract"`
	RecordedAt time.Time `json:"recorded_at"`
}

// PutContract records the contract of a revision, replacing one recorded
// before for it.
func (s *Store) PutContract(c Contract) error {
	if c.Server == "" || c.RevisionID == 0 || len(c.Contract) == 0 {
		return errors.New("state: put contract: a revision, a server and a contract are required")
	}
	if c.RecordedAt.IsZero() {
		c.RecordedAt = s.now()
	}
	err := s.write(func(tx *txn) error {
		_, err := tx.ExecContext(context.Background(), `INSERT INTO contracts (revision_id, server, version, contract, recorded_at)
			VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (revision_id) DO UPDATE SET server = excluded.server, version = excluded.version,
				contract = excluded.contract, recorded_at = excluded.recorded_at`,
			c.RevisionID, c.Server, c.Version, c.Contract, formatTime(c.RecordedAt))
		return err
	})
	return s.wrapErr("put contract", err)
}

// LastVerifiedContract returns the contract of the newest verified revision
// of server that has one recorded, or ErrNotFound.
func (s *Store) LastVerifiedContract(server string) (*Contract, error) {
	cs, err := s.queryContracts(`SELECT c.revision_id, c.server, c.version, c.contract, c.recorded_at
		FROM contracts c JOIN revisions r ON r.id = c.revision_id
		WHERE c.server = ? AND r.outcome = ? ORDER BY c.revision_id DESC LIMIT 1`, server, string(OutcomeVerified))
	if err != nil {
		return nil, fmt.Errorf("state: last contract of %s: %w", server, err)
	}
	if len(cs) == 0 {
		return nil, fmt.Errorf("state: last contract of %s: %w", server, ErrNotFound)
	}
	return &cs[0], nil
}

// LastVerifiedContracts returns, for every server that has one, the
// contract of its newest verified revision that recorded one.
func (s *Store) LastVerifiedContracts() (map[string]*Contract, error) {
	cs, err := s.queryContracts(`SELECT c.revision_id, c.server, c.version, c.contract, c.recorded_at
		FROM contracts c WHERE c.revision_id IN (
			SELECT max(c2.revision_id) FROM contracts c2 JOIN revisions r ON r.id = c2.revision_id
			WHERE r.outcome = ? GROUP BY c2.server)`, string(OutcomeVerified))
	if err != nil {
		return nil, s.wrapErr("last contracts", err)
	}
	out := make(map[string]*Contract, len(cs))
	for i := range cs {
		out[cs[i].Server] = &cs[i]
	}
	return out, nil
}

func (s *Store) queryContracts(q string, args ...any) ([]Contract, error) {
	rows, err := s.queryContext(context.Background(), q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Contract
	for rows.Next() {
		var c Contract
		var at string
		if err := rows.Scan(&c.RevisionID, &c.Server, &c.Version, &c.Contract, &at); err != nil {
			return nil, err
		}
		if c.RecordedAt, err = parseTime(at); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// RecentContracts returns the contracts recorded for server's verified
// revisions, newest first, at most limit of them (the dashboard compares
// the two newest).
func (s *Store) RecentContracts(server string, limit int) ([]Contract, error) {
	cs, err := s.queryContracts(`SELECT c.revision_id, c.server, c.version, c.contract, c.recorded_at
		FROM contracts c JOIN revisions r ON r.id = c.revision_id
		WHERE c.server = ? AND r.outcome = ? ORDER BY c.revision_id DESC LIMIT ?`, server, string(OutcomeVerified), max(limit, 1))
	if err != nil {
		return nil, s.wrapErr("recent contracts", err)
	}
	return cs, nil
}

// ContractsOf returns every contract recorded for server, by revision.
func (s *Store) ContractsOf(server string) (map[int64]*Contract, error) {
	cs, err := s.queryContracts(`SELECT c.revision_id, c.server, c.version, c.contract, c.recorded_at
		FROM contracts c WHERE c.server = ? ORDER BY c.revision_id`, server)
	if err != nil {
		return nil, fmt.Errorf("state: contracts of %s: %w", server, err)
	}
	out := make(map[int64]*Contract, len(cs))
	for i := range cs {
		out[cs[i].RevisionID] = &cs[i]
	}
	return out, nil
}
