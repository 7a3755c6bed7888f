package state

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// applyLockKey is the apply lock's advisory lock key (with lockClass): a
// session-scoped lock, held by the lease's own connection, that the server
// frees when that connection ends, however the tend that held it ended.
const applyLockKey int32 = 2

// lockHolderPID is the server process id (pg_backend_pid) of the session
// that holds the apply lock, in the store's database.
const lockHolderPID = `SELECT pid FROM pg_locks WHERE locktype = 'advisory'
	AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
	AND classid::bigint = $1 AND objid::bigint = $2 AND objsubid = 2 AND granted`

// lockPostgres is Lock on PostgreSQL. The lock is the advisory lock
// (lockClass, applyLockKey), taken on a connection of the lease's own, and
// the lock row says who holds it (owner, host, pid, since, until) for
// LockedError, LockHolder and tend unlock. A lock row found when the
// advisory lock was free is a holder that is gone (its session ended):
// it is taken over, as a stale lock is on SQLite. A holder whose session
// is alive but whose lock expired (it stopped refreshing: paused, hung) is
// taken over too, by ending its session first, so that it cannot go on
// believing it holds the lock.
func (s *Store) lockPostgres(lease *Lease, info LockInfo, ttl time.Duration) error {
	ctx := context.Background()
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("state: lock: %w", s.annotate(err))
	}
	var reason string
	for attempt := 0; ; attempt++ {
		var got bool
		if err := conn.QueryRowContext(ctx, `SELECT pg_try_advisory_lock($1, $2)`, lockClass, applyLockKey).Scan(&got); err != nil {
			conn.Close()
			return fmt.Errorf("state: lock: %w", s.annotate(err))
		}
		if got {
			break
		}
		holder, err := readLock(ctx, s.q())
		if err != nil {
			conn.Close()
			return fmt.Errorf("state: lock: %w", s.annotate(err))
		}
		switch {
		case holder == nil && attempt < 20:
			// The holder has the advisory lock but has not written its
			// row yet.
			time.Sleep(10 * time.Millisecond)
			continue
		case holder == nil:
			conn.Close()
			return &LockedError{Holder: LockInfo{Owner: "another tend (it wrote no lock row)", ExpiresAt: s.now()}}
		case s.now().Before(holder.ExpiresAt) || attempt > 0:
			conn.Close()
			return &LockedError{Holder: holder.LockInfo}
		}
		// Expired: end the holder's session, then try again.
		if _, err := s.terminateLockHolder(ctx); err != nil {
			conn.Close()
			return fmt.Errorf("state: lock: end the session of %s, whose lock expired: %w", holder.LockInfo, s.annotate(err))
		}
		reason = "it expired at " + holder.ExpiresAt.UTC().Format(time.RFC3339) + " (its database session was ended)"
	}
	err = s.write(func(tx *txn) error {
		now := s.now()
		holder, err := readLock(ctx, tx)
		if err != nil {
			return err
		}
		if holder != nil {
			prev := holder.LockInfo
			lease.TookOverFrom = &prev
			lease.TakeoverReason = reason
			if reason == "" {
				lease.TakeoverReason = fmt.Sprintf("its database session ended (the tend with pid %d on %s is gone)", prev.PID, prev.Host)
			}
		}
		info.AcquiredAt = now.UTC()
		info.ExpiresAt = now.Add(ttl).UTC()
		_, err = tx.ExecContext(ctx, `INSERT INTO lock
			(id, token, owner, operation, host, pid, acquired_at, expires_at)
			VALUES (1, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET token = excluded.token, owner = excluded.owner,
				operation = excluded.operation, host = excluded.host, pid = excluded.pid,
				acquired_at = excluded.acquired_at, expires_at = excluded.expires_at`,
			lease.token, info.Owner, info.Operation, info.Host, info.PID,
			formatTime(info.AcquiredAt), formatTime(info.ExpiresAt))
		return err
	})
	if err != nil {
		_, _ = conn.ExecContext(ctx, `SELECT pg_advisory_unlock($1, $2)`, lockClass, applyLockKey)
		conn.Close()
		return fmt.Errorf("state: lock: %w", err)
	}
	info.AcquiredAt, _ = parseTime(formatTime(info.AcquiredAt))
	info.ExpiresAt, _ = parseTime(formatTime(info.ExpiresAt))
	lease.Info = info
	lease.conn = conn
	return nil
}

// sessionAlive checks that the lease's connection, whose session holds the
// lock, is still there; when it is not, the lock went with it, and the
// error (wrapping ErrLockLost) says who holds it now.
func (l *Lease) sessionAlive(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var one int
	err := l.conn.QueryRowContext(ctx, `SELECT 1`).Scan(&one)
	if err == nil {
		return nil
	}
	l.conn.Close()
	return l.store.lostPostgres(l.token, "the database connection that held it was lost: "+l.store.annotate(err).Error())
}

// lostPostgres explains a lost PostgreSQL lease: the row another tend
// wrote, no row, or (the row still the lease's) why.
func (s *Store) lostPostgres(token, why string) error {
	h, err := readLock(context.Background(), s.q())
	switch {
	case err != nil:
		return fmt.Errorf("%w: %s", ErrLockLost, why)
	case h == nil:
		return fmt.Errorf("%w: it was removed (tend unlock?)", ErrLockLost)
	case h.token != token:
		return fmt.Errorf("%w: it was taken over by %s at %s", ErrLockLost, h.LockInfo, h.AcquiredAt.Format(time.RFC3339))
	}
	return fmt.Errorf("%w: %s", ErrLockLost, why)
}

// releasePostgres frees the advisory lock, removes the lock row if it is
// still the lease's, and closes the lease's connection.
func (l *Lease) releasePostgres(ctx context.Context) error {
	if err := l.sessionAlive(ctx); err != nil {
		return err
	}
	defer l.conn.Close()
	var row int64
	err := l.store.write(func(tx *txn) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM lock WHERE id = 1 AND token = ?`, l.token)
		if err != nil {
			return err
		}
		row, err = res.RowsAffected()
		return err
	})
	var unlocked bool
	if uerr := l.conn.QueryRowContext(ctx, `SELECT pg_advisory_unlock($1, $2)`, lockClass, applyLockKey).Scan(&unlocked); err == nil {
		err = uerr
	}
	if err != nil {
		return err
	}
	if row == 0 || !unlocked {
		return l.store.lostPostgres(l.token, "its session no longer held it")
	}
	return nil
}

// applyLockHeld reports whether a session holds the apply lock.
func (s *Store) applyLockHeld(ctx context.Context) (bool, error) {
	rows, err := s.db.QueryContext(ctx, lockHolderPID, int64(lockClass), int64(applyLockKey))
	if err != nil {
		return false, err
	}
	defer rows.Close()
	held := rows.Next()
	return held, rows.Err()
}

// terminateLockHolder ends the session that holds the apply lock and waits
// (up to 5 s) for it to end, which frees the lock. It reports whether there
// was one.
func (s *Store) terminateLockHolder(ctx context.Context) (bool, error) {
	var ended bool
	err := s.db.QueryRowContext(ctx, `SELECT pg_terminate_backend(pid, 5000) FROM (`+lockHolderPID+`) h`,
		int64(lockClass), int64(applyLockKey)).Scan(&ended)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if !ended {
		return true, errors.New("its session did not end within 5s")
	}
	return true, nil
}

// forceUnlockPostgres is ForceUnlock on PostgreSQL: it ends the holder's
// session and removes the lock row.
func (s *Store) forceUnlockPostgres(ctx context.Context) (*LockInfo, error) {
	held, err := s.terminateLockHolder(ctx)
	if err != nil {
		return nil, s.wrapErr("unlock", err)
	}
	var holder *storedLock
	err = s.write(func(tx *txn) error {
		h, err := readLock(ctx, tx)
		if err != nil || h == nil {
			return err
		}
		holder = h
		_, err = tx.ExecContext(ctx, `DELETE FROM lock WHERE id = 1`)
		return err
	})
	if err != nil || holder == nil || !held {
		// A row without a session is a lock already free: say so, as for a
		// free lock, but remove the row all the same.
		return nil, s.wrapErr("unlock", err)
	}
	return &holder.LockInfo, nil
}
