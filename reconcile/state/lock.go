package state

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
)

// ErrLockLost is wrapped by Lease.Refresh and Lease.Release when the lock is
// no longer the lease's: another tend took it over, `tend unlock` removed it,
// or the lease was already released.
var ErrLockLost = errors.New("state lock is no longer held by this lease")

// LockInfo says who holds, or wants, the apply lock.
type LockInfo struct {
	Owner      string // who: "tend apply", a user name, a daemon id
	Operation  string // "apply", "rollback", "run"
	Host       string
	PID        int
	AcquiredAt time.Time
	ExpiresAt  time.Time
}

func (i LockInfo) String() string {
	return fmt.Sprintf("%s (pid %d on %s, %s)", i.Owner, i.PID, i.Host, i.Operation)
}

// LockedError is returned by Lock when another live tend holds the lock.
type LockedError struct{ Holder LockInfo }

func (e *LockedError) Error() string {
	h := e.Holder
	return fmt.Sprintf("state is locked by %s (pid %d on %s, %s) since %s; it expires at %s. "+
		"If that tend is gone, run `tend unlock`.",
		h.Owner, h.PID, h.Host, h.Operation,
		h.AcquiredAt.UTC().Format(time.RFC3339), h.ExpiresAt.UTC().Format(time.RFC3339))
}

// Lease is a held apply lock. Its methods are safe for concurrent use (a
// heartbeat goroutine may Refresh while the owner Releases).
type Lease struct {
	store *Store
	token string
	// conn is a PostgreSQL lease's own connection, whose session holds the
	// advisory lock; nil on SQLite.
	conn *sql.Conn

	mu       sync.Mutex
	released bool

	// Info is the lock as written: the caller's LockInfo with Host and PID
	// filled in when empty, AcquiredAt and ExpiresAt set by Lock (and
	// ExpiresAt moved by Refresh).
	Info LockInfo
	// TookOverFrom is the previous holder when Lock took over a stale or
	// expired lock, nil when the lock was free.
	TookOverFrom *LockInfo
	// TakeoverReason says why the previous holder's lock was taken over
	// ("expired at ...", "process 123 is gone from host ..."), empty when the
	// lock was free.
	TakeoverReason string
}

var hostname = sync.OnceValue(func() string {
	h, err := os.Hostname()
	if err != nil {
		return ""
	}
	return h
})

// Lock takes the single apply lock for ttl. (On PostgreSQL, see
// lockPostgres: the lock is an advisory lock of the lease's session.)
//
// When the lock is held, Lock returns a *LockedError naming the holder, unless
// the holder's lock has expired, or the holder ran on this host (its Host is
// this machine's host name) and its PID no longer exists: such a lock is stale
// and is taken over, and the returned Lease's TookOverFrom and TakeoverReason
// say from whom and why, for the caller to log (and to MarkInterrupted what
// the dead tend left pending). A holder on another host is only ever stale by
// expiry. Lock reads and writes the lock in one BEGIN IMMEDIATE transaction, so
// of several tends racing for it exactly one wins.
//
// An empty info.Host is filled with this host's name and a zero info.PID with
// this process's; AcquiredAt is set to now and ExpiresAt to now + ttl.
func (s *Store) Lock(info LockInfo, ttl time.Duration) (*Lease, error) {
	if ttl <= 0 {
		return nil, fmt.Errorf("state: lock ttl must be positive, not %v", ttl)
	}
	if info.Host == "" {
		info.Host = hostname()
	}
	if info.PID == 0 {
		info.PID = os.Getpid()
	}
	token, err := newToken()
	if err != nil {
		return nil, err
	}
	lease := &Lease{store: s, token: token}
	if s.pg != nil {
		if err := s.lockPostgres(lease, info, ttl); err != nil {
			return nil, err
		}
		return lease, nil
	}
	ctx := context.Background()
	err = s.write(func(tx *txn) error {
		now := s.now()
		holder, err := readLock(ctx, tx)
		if err != nil {
			return err
		}
		if holder != nil {
			reason := staleReason(holder.LockInfo, now)
			if reason == "" {
				return &LockedError{Holder: holder.LockInfo}
			}
			prev := holder.LockInfo
			lease.TookOverFrom = &prev
			lease.TakeoverReason = reason
		}
		info.AcquiredAt = now.UTC()
		info.ExpiresAt = now.Add(ttl).UTC()
		_, err = tx.ExecContext(ctx, `INSERT INTO lock
			(id, token, owner, operation, host, pid, acquired_at, expires_at)
			VALUES (1, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET token = excluded.token, owner = excluded.owner,
				operation = excluded.operation, host = excluded.host, pid = excluded.pid,
				acquired_at = excluded.acquired_at, expires_at = excluded.expires_at`,
			token, info.Owner, info.Operation, info.Host, info.PID,
			formatTime(info.AcquiredAt), formatTime(info.ExpiresAt))
		return err
	})
	if err != nil {
		if le := (*LockedError)(nil); errors.As(err, &le) {
			return nil, le
		}
		return nil, fmt.Errorf("state: lock: %w", err)
	}
	// Round-trip the times as stored, so that Info equals LockHolder's answer.
	info.AcquiredAt, _ = parseTime(formatTime(info.AcquiredAt))
	info.ExpiresAt, _ = parseTime(formatTime(info.ExpiresAt))
	lease.Info = info
	return lease, nil
}

// staleReason says why the holder's lock may be taken over at now, or is
// empty when the holder is presumed alive.
func staleReason(h LockInfo, now time.Time) string {
	if !now.Before(h.ExpiresAt) {
		return "it expired at " + h.ExpiresAt.UTC().Format(time.RFC3339)
	}
	if h.Host != "" && h.Host == hostname() && h.PID > 0 && !processAlive(h.PID) {
		return fmt.Sprintf("its process %d is gone from host %s", h.PID, h.Host)
	}
	return ""
}

// Refresh extends the lock to now + ttl. It fails, wrapping ErrLockLost, when
// the lock is no longer this lease's. A lease that has expired but that no
// one took over is refreshed normally.
func (l *Lease) Refresh(ttl time.Duration) error {
	if ttl <= 0 {
		return fmt.Errorf("state: lock ttl must be positive, not %v", ttl)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.released {
		return fmt.Errorf("state: refresh lock: %w: it was released", ErrLockLost)
	}
	s := l.store
	ctx := context.Background()
	if l.conn != nil {
		if err := l.sessionAlive(ctx); err != nil {
			return fmt.Errorf("state: refresh lock: %w", err)
		}
	}
	var expires time.Time
	err := s.write(func(tx *txn) error {
		expires = s.now().Add(ttl).UTC()
		res, err := tx.ExecContext(ctx, `UPDATE lock SET expires_at = ? WHERE id = 1 AND token = ?`,
			formatTime(expires), l.token)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return lostError(ctx, tx)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("state: refresh lock: %w", err)
	}
	l.Info.ExpiresAt, _ = parseTime(formatTime(expires))
	return nil
}

// Release frees the lock if it is still this lease's. When another tend took
// it over (or `tend unlock` removed it), Release leaves the lock alone and
// returns an error wrapping ErrLockLost. Releasing twice is not an error.
func (l *Lease) Release() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.released {
		return nil
	}
	ctx := context.Background()
	if l.conn != nil {
		err := l.releasePostgres(ctx)
		if err == nil || errors.Is(err, ErrLockLost) {
			l.released = true
		}
		if err != nil {
			return fmt.Errorf("state: release lock: %w", err)
		}
		return nil
	}
	err := l.store.write(func(tx *txn) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM lock WHERE id = 1 AND token = ?`, l.token)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return lostError(ctx, tx)
		}
		return nil
	})
	var lost bool
	if errors.Is(err, ErrLockLost) {
		lost = true
	}
	if err == nil || lost {
		l.released = true
	}
	if err != nil {
		return fmt.Errorf("state: release lock: %w", err)
	}
	return nil
}

// lostError explains, inside the transaction that found the lease's row gone,
// who holds the lock now.
func lostError(ctx context.Context, tx *txn) error {
	h, err := readLock(ctx, tx)
	if err != nil {
		return err
	}
	if h == nil {
		return fmt.Errorf("%w: it was removed (tend unlock?)", ErrLockLost)
	}
	return fmt.Errorf("%w: it was taken over by %s at %s", ErrLockLost,
		h.LockInfo, h.AcquiredAt.Format(time.RFC3339))
}

// LockHolder returns the lock as stored, expired or not, or nil when the lock
// is free.
//
// On PostgreSQL, a lock row whose holder's session has ended (the lock is
// free: the tend that held it is gone) is not a holder: LockHolder returns
// nil for it.
func (s *Store) LockHolder() (*LockInfo, error) {
	if s.pg != nil {
		held, err := s.applyLockHeld(context.Background())
		if err != nil || !held {
			return nil, s.wrapErr("lock holder", err)
		}
	}
	h, err := readLock(context.Background(), s.q())
	if err != nil || h == nil {
		return nil, s.wrapErr("lock holder", err)
	}
	return &h.LockInfo, nil
}

// ForceUnlock removes the lock whoever holds it, for `tend unlock`, and
// returns who held it (nil when it was free). The former holder's Refresh and
// Release then fail with ErrLockLost.
//
// On PostgreSQL, ForceUnlock ends the database session that holds the
// advisory lock (pg_terminate_backend), which frees it.
func (s *Store) ForceUnlock() (*LockInfo, error) {
	ctx := context.Background()
	if s.pg != nil {
		return s.forceUnlockPostgres(ctx)
	}
	var holder *storedLock
	err := s.write(func(tx *txn) error {
		h, err := readLock(ctx, tx)
		if err != nil || h == nil {
			return err
		}
		holder = h
		_, err = tx.ExecContext(ctx, `DELETE FROM lock WHERE id = 1`)
		return err
	})
	if err != nil || holder == nil {
		return nil, s.wrapErr("unlock", err)
	}
	return &holder.LockInfo, nil
}

type storedLock struct {
	LockInfo
	token string
}

type rowQuerier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func readLock(ctx context.Context, q rowQuerier) (*storedLock, error) {
	var (
		l                 storedLock
		acquired, expires string
	)
	err := q.QueryRowContext(ctx, `SELECT token, owner, operation, host, pid, acquired_at, expires_at
		FROM lock WHERE id = 1`).Scan(&l.token, &l.Owner, &l.Operation, &l.Host, &l.PID, &acquired, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if l.AcquiredAt, err = parseTime(acquired); err != nil {
		return nil, err
	}
	if l.ExpiresAt, err = parseTime(expires); err != nil {
		return nil, err
	}
	return &l, nil
}

func newToken() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("state: lock token: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// wrapErr prefixes err, if any, with the operation; a SQLite corruption
// error becomes one that names the file and the way out (ErrDamaged).
func (s *Store) wrapErr(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("state: %s: %w", op, s.annotate(err))
}
