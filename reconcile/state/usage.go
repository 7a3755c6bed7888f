package state

import (
	"context"
	"errors"
	"time"
)

// UsageSample is what one server used at one time, summed over the
// replicas that were sampled.
type UsageSample struct {
	Server      string    `json:"server"`
	At          time.Time `json:"at"`
	Replicas    int       `json:"replicas"`
	MilliCPU    int64     `json:"milli_cpu"`
	MemoryBytes int64     `json:"memory_bytes"`
}

// UsageSummary is the average and the peak of a server's samples over a
// span of time.
type UsageSummary struct {
	Server  string    `json:"server"`
	Samples int       `json:"samples"`
	First   time.Time `json:"first"`
	Last    time.Time `json:"last"`
	// Avg and Peak of the CPU in millicores and of the memory in bytes.
	AvgMilliCPU     int64 `json:"avg_milli_cpu"`
	PeakMilliCPU    int64 `json:"peak_milli_cpu"`
	AvgMemoryBytes  int64 `json:"avg_memory_bytes"`
	PeakMemoryBytes int64 `json:"peak_memory_bytes"`
}

// RecordUsage writes samples and, in the same transaction, deletes the
// samples taken before keepSince (none when it is zero), so the table
// holds a bounded span of time.
func (s *Store) RecordUsage(samples []UsageSample, keepSince time.Time) error {
	for _, u := range samples {
		if u.Server == "" || u.At.IsZero() {
			return errors.New("state: record usage: every sample needs a server and a time")
		}
	}
	err := s.write(func(tx *txn) error {
		ctx := context.Background()
		if !keepSince.IsZero() {
			if _, err := tx.ExecContext(ctx, `DELETE FROM usage_samples WHERE at < ?`, keepSince.Unix()); err != nil {
				return err
			}
		}
		if len(samples) == 0 {
			return nil
		}
		st, err := tx.PrepareContext(ctx, `INSERT INTO usage_samples (server, at, replicas, milli_cpu, memory_bytes) VALUES (?, ?, ?, ?, ?)`)
		if err != nil {
			return err
		}
		defer st.Close()
		for _, u := range samples {
			if _, err := st.ExecContext(ctx, u.Server, u.At.Unix(), u.Replicas, max(u.MilliCPU, 0), max(u.MemoryBytes, 0)); err != nil {
				return err
			}
		}
		return nil
	})
	return s.wrapErr("record usage", err)
}

// UsageSince summarises, per server, the samples taken at or after since.
// A server with no sample in that span is absent.
func (s *Store) UsageSince(since time.Time) (map[string]UsageSummary, error) {
	rows, err := s.queryContext(context.Background(), `SELECT server, count(*), min(at), max(at),
		CAST(round(avg(milli_cpu)) AS BIGINT), max(milli_cpu), CAST(round(avg(memory_bytes)) AS BIGINT), max(memory_bytes)
		FROM usage_samples WHERE at >= ? GROUP BY server`, since.Unix())
	if err != nil {
		return nil, s.wrapErr("usage", err)
	}
	defer rows.Close()
	out := map[string]UsageSummary{}
	for rows.Next() {
		var u UsageSummary
		var first, last int64
		if err := rows.Scan(&u.Server, &u.Samples, &first, &last, &u.AvgMilliCPU, &u.PeakMilliCPU, &u.AvgMemoryBytes, &u.PeakMemoryBytes); err != nil {
			return nil, s.wrapErr("usage", err)
		}
		u.First, u.Last = time.Unix(first, 0).UTC(), time.Unix(last, 0).UTC()
		out[u.Server] = u
	}
	return out, s.wrapErr("usage", rows.Err())
}
