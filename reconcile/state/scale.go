package state

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// Outcomes of a scaling decision.
const (
	ScalePending     = "pending"     // recorded; the scale is being applied
	ScaleApplied     = "applied"     // the new replicas were started and verified, or the extra ones stopped
	ScaleFailed      = "failed"      // the scale failed; the server is back at its last good count
	ScaleHeld        = "held"        // not applied: that count failed verification before
	ScaleInterrupted = "interrupted" // tend stopped while it was pending; the next pass converges
)

// ScaleTarget is the replica count the autoscaler keeps for a server.
type ScaleTarget struct {
	Server     string    `json:"server"`
	Provider   string    `json:"provider"`
	Replicas   int       `json:"replicas"`
	Min        int       `json:"min"`
	Max        int       `json:"max"`
	DecisionID int64     `json:"decision_id,omitempty"`
	UpdatedAt  time.Time `json:"updated_at"`
}

// ScaleDecision is one recorded autoscaling decision.
type ScaleDecision struct {
	ID           int64  `json:"id"`
	Server       string `json:"server"`
	FromReplicas int    `json:"from_replicas"`
	ToReplicas   int    `json:"to_replicas"`
	Outcome      string `json:"outcome"`
	// Reason is the autoscaler's one line (what it saw, what it wants).
	Reason string `json:"reason"`
	// Message says how the scale ended.
	Message string `json:"message,omitempty"`
	// Inputs is the decision with its samples and targets, as JSON.
	Inputs     []byte    `json:"-"`
	RevisionID int64     `json:"revision_id,omitempty"`
	DecidedAt  time.Time `json:"decided_at"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
}

// BeginScale records a decision as pending and, in the same transaction,
// makes its count the server's target: a tend that stops half way through
// the scale converges to it on its next pass. t.DecisionID is set to the
// new decision.
func (s *Store) BeginScale(d ScaleDecision, t ScaleTarget) (int64, error) {
	if d.Server == "" || t.Server != d.Server {
		return 0, errors.New("state: begin scale: a server name is required, the same in the decision and the target")
	}
	if d.DecidedAt.IsZero() {
		d.DecidedAt = s.now()
	}
	var id int64
	err := s.write(func(tx *txn) error {
		ctx := context.Background()
		var err error
		id, err = tx.insertID(ctx, `INSERT INTO scale_decisions
			(server, from_replicas, to_replicas, outcome, reason, message, inputs, decided_at)
			VALUES (?, ?, ?, ?, ?, '', ?, ?)`,
			d.Server, d.FromReplicas, d.ToReplicas, ScalePending, d.Reason, d.Inputs, formatTime(d.DecidedAt))
		if err != nil {
			return err
		}
		t.DecisionID = id
		return putScaleTarget(tx, t, d.DecidedAt)
	})
	return id, s.wrapErr("begin scale", err)
}

// RecordScale records a decision that was not applied (held), finished.
func (s *Store) RecordScale(d ScaleDecision) (int64, error) {
	if d.DecidedAt.IsZero() {
		d.DecidedAt = s.now()
	}
	var id int64
	err := s.write(func(tx *txn) error {
		var err error
		id, err = tx.insertID(context.Background(), `INSERT INTO scale_decisions
			(server, from_replicas, to_replicas, outcome, reason, message, inputs, decided_at, finished_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			d.Server, d.FromReplicas, d.ToReplicas, d.Outcome, d.Reason, d.Message, d.Inputs,
			formatTime(d.DecidedAt), formatTime(d.DecidedAt))
		return err
	})
	return id, s.wrapErr("record scale", err)
}

// FinishScale records how a pending decision ended. A failed one also moves
// the server's target back to replicas, its last good count (when
// replicas >= 0).
func (s *Store) FinishScale(id int64, outcome, msg string, revisionID int64, replicas int, at time.Time) error {
	err := s.write(func(tx *txn) error {
		ctx := context.Background()
		var rev any
		if revisionID != 0 {
			rev = revisionID
		}
		res, err := tx.ExecContext(ctx, `UPDATE scale_decisions SET outcome = ?, message = ?, revision_id = ?, finished_at = ?
			WHERE id = ?`, outcome, msg, rev, formatTime(at), id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		if replicas >= 0 {
			_, err = tx.ExecContext(ctx, `UPDATE scale_targets SET replicas = ?, updated_at = ? WHERE decision_id = ?`,
				replicas, formatTime(at), id)
		}
		return err
	})
	return s.wrapErr("finish scale", err)
}

// MarkScalesInterrupted marks the decisions left pending by a tend that
// stopped; their targets stay, so the next pass converges to them.
func (s *Store) MarkScalesInterrupted(at time.Time) (int64, error) {
	var n int64
	err := s.write(func(tx *txn) error {
		res, err := tx.ExecContext(context.Background(), `UPDATE scale_decisions SET outcome = ?, finished_at = ?,
			message = 'tend stopped before the scale ended; the next pass converges to this count' WHERE outcome = ?`,
			ScaleInterrupted, formatTime(at), ScalePending)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, s.wrapErr("mark scales interrupted", err)
}

func putScaleTarget(tx *txn, t ScaleTarget, at time.Time) error {
	var dec any
	if t.DecisionID != 0 {
		dec = t.DecisionID
	}
	_, err := tx.ExecContext(context.Background(), `INSERT INTO scale_targets
		(server, provider, replicas, min, max, decision_id, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (server) DO UPDATE SET provider = excluded.provider, replicas = excluded.replicas,
			min = excluded.min, max = excluded.max, decision_id = excluded.decision_id, updated_at = excluded.updated_at`,
		t.Server, t.Provider, t.Replicas, t.Min, t.Max, dec, formatTime(at))
	return err
}

// DeleteScaleTarget forgets the autoscaled count of a server: its min or
// max changed, it moved to another provider, or it was deleted.
func (s *Store) DeleteScaleTarget(server string) error {
	err := s.write(func(tx *txn) error {
		_, err := tx.ExecContext(context.Background(), `DELETE FROM scale_targets WHERE server = ?`, server)
		return err
	})
	return s.wrapErr("delete scale target", err)
}

// ScaleTargets returns every server's autoscaled count.
func (s *Store) ScaleTargets() (map[string]ScaleTarget, error) {
	rows, err := s.queryContext(context.Background(),
		`SELECT server, provider, replicas, min, max, decision_id, updated_at FROM scale_targets`)
	if err != nil {
		return nil, s.wrapErr("scale targets", err)
	}
	defer rows.Close()
	out := map[string]ScaleTarget{}
	for rows.Next() {
		var t ScaleTarget
		var dec sql.NullInt64
		var at string
		if err := rows.Scan(&t.Server, &t.Provider, &t.Replicas, &t.Min, &t.Max, &dec, &at); err != nil {
			return nil, s.wrapErr("scale targets", err)
		}
		t.DecisionID = dec.Int64
		if t.UpdatedAt, err = parseTime(at); err != nil {
			return nil, err
		}
		out[t.Server] = t
	}
	return out, s.wrapErr("scale targets", rows.Err())
}

// ScaleDecisions returns the newest decisions of a server ("" for every
// server), newest first, at most limit (0: 100).
func (s *Store) ScaleDecisions(server string, limit int) ([]ScaleDecision, error) {
	if limit <= 0 {
		limit = 100
	}
	q := `SELECT id, server, from_replicas, to_replicas, outcome, reason, message, inputs, revision_id, decided_at, finished_at
		FROM scale_decisions`
	var args []any
	if server != "" {
		q += ` WHERE server = ?`
		args = append(args, server)
	}
	q += ` ORDER BY id DESC LIMIT ?`
	args = append(args, limit)
	return s.queryScales(q, args...)
}

// LatestScaleDecisions returns the newest decision of every server.
func (s *Store) LatestScaleDecisions() (map[string]ScaleDecision, error) {
	list, err := s.queryScales(`SELECT id, server, from_replicas, to_replicas, outcome, reason, message, inputs, revision_id, decided_at, finished_at
		FROM scale_decisions WHERE id IN (SELECT max(id) FROM scale_decisions GROUP BY server)`)
	if err != nil {
		return nil, err
	}
	out := make(map[string]ScaleDecision, len(list))
	for _, d := range list {
		out[d.Server] = d
	}
	return out, nil
}

func (s *Store) queryScales(q string, args ...any) ([]ScaleDecision, error) {
	rows, err := s.queryContext(context.Background(), q, args...)
	if err != nil {
		return nil, s.wrapErr("scale decisions", err)
	}
	defer rows.Close()
	var out []ScaleDecision
	for rows.Next() {
		var d ScaleDecision
		var rev sql.NullInt64
		var decided string
		var finished sql.NullString
		if err := rows.Scan(&d.ID, &d.Server, &d.FromReplicas, &d.ToReplicas, &d.Outcome, &d.Reason, &d.Message,
			&d.Inputs, &rev, &decided, &finished); err != nil {
			return nil, s.wrapErr("scale decisions", err)
		}
		d.RevisionID = rev.Int64
		if d.DecidedAt, err = parseTime(decided); err != nil {
			return nil, err
		}
		if d.FinishedAt, err = parseNullTime(finished); err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, s.wrapErr("scale decisions", rows.Err())
}
