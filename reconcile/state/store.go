package state

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// ErrNotFound is returned when a revision, a source snapshot or a verified
// revision asked for does not exist.
var ErrNotFound = errors.New("not found")

// ErrSchemaTooNew is wrapped by Open's error when the store was written by a
// newer tend: its schema_migrations records a version this code does not know.
var ErrSchemaTooNew = errors.New("state store schema is newer than this tend")

// busyTimeout is how long a statement waits for another connection's lock
// before failing with SQLITE_BUSY.
const busyTimeout = 5 * time.Second

// Store is an open state store. It is safe for concurrent use by several
// goroutines, and several processes may open the same file at once.
type Store struct {
	db *sql.DB
	// pg is set for a PostgreSQL store (OpenPostgres); the rest of this
	// comment's fields are then unused.
	pg *pgStore
	// path is what the store was opened with (for PostgreSQL, the URL
	// with its password); display is the same without a password.
	path    string
	display string
	abs     string

	// file is the database file as Open found it, to notice it removed or
	// replaced under the open store; ident is the store's identity.
	file  os.FileInfo
	ident Identity

	// now is the store's clock; tests replace it.
	now func() time.Time
	// readOnly: opened by OpenReadOnly; every write is refused.
	readOnly bool
}

// Open opens the store at path, creating the file (mode 0600) and its
// directory (mode 0700) when they do not exist, and migrates its schema
// forward. A store whose schema was written by a newer tend is refused with an
// error wrapping ErrSchemaTooNew.
//
// Open checks that the database is the store tend left there. A new store
// gets a random identity, kept in the database and in a marker file beside
// it (MarkerPath: state.db, state.id). With a marker present, a database
// that is missing or empty is refused (ErrStoreMissing) rather than replaced
// by a new, empty store, and a database of another identity is refused too
// (ErrStoreMismatch). A store older than identities is given one, and its
// marker, without a word. A file SQLite finds malformed on open is refused
// with an error wrapping ErrDamaged; QuickCheck looks at every page.
//
// A path that is a PostgreSQL URL (postgres://... or postgresql://...)
// opens that database instead (OpenPostgres).
func Open(path string) (*Store, error) {
	if path == "" {
		return nil, errors.New("state: empty store path")
	}
	if IsPostgresURL(path) {
		return OpenPostgres(path)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o700); err != nil {
		return nil, fmt.Errorf("state: create store directory: %w", err)
	}
	markerPath := MarkerPath(abs)
	mark, err := readMarker(markerPath)
	if err != nil {
		return nil, fmt.Errorf("state: open %s: %w", path, err)
	}
	if mark != nil {
		what, err := absence(abs)
		if err != nil {
			return nil, fmt.Errorf("state: open %s: %w", path, err)
		}
		if what != "" {
			return nil, fmt.Errorf("state: open %s: %w", path, missingError(abs, markerPath, *mark, what))
		}
	}
	if err := createFile(abs); err != nil {
		return nil, err
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("state: open %s: %w", path, err)
	}

	db, err := sql.Open("sqlite", dsn(abs))
	if err != nil {
		return nil, fmt.Errorf("state: open %s: %w", path, err)
	}
	s := &Store{db: db, path: path, display: path, abs: abs, file: fi, now: time.Now}
	fail := func(err error) (*Store, error) {
		db.Close()
		return nil, fmt.Errorf("state: open %s: %w", path, annotate(abs, err))
	}
	if err := db.PingContext(context.Background()); err != nil {
		return fail(err)
	}
	if err := s.migrate(); err != nil {
		return fail(err)
	}
	if s.ident, err = s.ensureIdentity(mark); err != nil {
		return fail(err)
	}
	switch {
	case mark == nil:
		if err := writeMarker(markerPath, abs, s.ident); err != nil {
			return fail(err)
		}
	case mark.ID != s.ident.ID:
		return fail(mismatchError(abs, markerPath, s.ident, *mark))
	}
	return s, nil
}

// createFile creates the database file with mode 0600 if it does not exist,
// so that SQLite (which would use 0644 less the umask) never creates it, and
// so that the -wal and -shm files, which SQLite creates with the database
// file's mode, are 0600 too. An existing file's mode is left alone.
func createFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	switch {
	case errors.Is(err, os.ErrExist):
		return nil
	case err != nil:
		return fmt.Errorf("state: create store: %w", err)
	}
	// The umask can only remove bits, but make the mode exact all the same.
	err = f.Chmod(0o600)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("state: create store: %w", err)
	}
	return nil
}

// dsn is the driver's data source name for the file at the absolute path:
// a file: URI (so that any character in the path is escaped) whose query sets
// the connection pragmas, applied to every connection of the pool, and makes
// every write transaction BEGIN IMMEDIATE so that it takes the write lock up
// front and waits for it under busy_timeout, instead of failing when a read
// transaction has to be upgraded.
func dsn(abs string) string {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()))
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Set("_txlock", "immediate")
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(abs), RawQuery: q.Encode()}
	return u.String()
}

// Close closes the store. A Lease taken from it can no longer be refreshed or
// released through it.
func (s *Store) Close() error { return s.db.Close() }

// Path is the path the store was opened with; for a PostgreSQL store, its
// URL without the password (safe to print).
func (s *Store) Path() string { return s.display }

// Backend is "sqlite" or "postgres".
func (s *Store) Backend() string {
	if s.pg != nil {
		return "postgres"
	}
	return "sqlite"
}

// write runs fn in one short write transaction, after checking that the
// store's file is still the one Open opened. SQLite's is BEGIN IMMEDIATE:
// it takes the write lock up front. PostgreSQL's takes a transaction-scoped
// advisory lock first (writeLockKey), so that writes are serialized as they
// are on SQLite and what a transaction read stays true until it commits.
func (s *Store) write(fn func(tx *txn) error) error {
	if s.readOnly {
		return fmt.Errorf("the store %s was opened read-only", s.display)
	}
	if err := s.checkFile(); err != nil {
		return err
	}
	ctx := context.Background()
	sqlTx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return s.annotate(err)
	}
	tx := &txn{tx: sqlTx, pg: s.pg != nil}
	if s.pg != nil {
		if _, err := sqlTx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1, $2)`, lockClass, writeLockKey); err != nil {
			_ = sqlTx.Rollback()
			return s.annotate(err)
		}
	}
	if err := fn(tx); err != nil {
		_ = sqlTx.Rollback()
		return s.annotate(err)
	}
	return s.annotate(sqlTx.Commit())
}

// annotate turns a SQLite corruption error into one that names the file
// and the way out, and takes a PostgreSQL store's password out of an error.
func (s *Store) annotate(err error) error {
	if s.pg != nil {
		return s.pg.scrub(err)
	}
	return annotate(s.abs, err)
}

// txn is a write transaction. Its statements are written with ? for their
// parameters, which PostgreSQL's get rewritten to $1, $2, ...
type txn struct {
	tx *sql.Tx
	pg bool
}

func (t *txn) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return t.tx.ExecContext(ctx, rebind(t.pg, q), args...)
}

func (t *txn) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return t.tx.QueryContext(ctx, rebind(t.pg, q), args...)
}

func (t *txn) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	return t.tx.QueryRowContext(ctx, rebind(t.pg, q), args...)
}

func (t *txn) PrepareContext(ctx context.Context, q string) (*sql.Stmt, error) {
	return t.tx.PrepareContext(ctx, rebind(t.pg, q))
}

// insertID runs an INSERT into a table whose key is id and returns the new
// row's id: SQLite's last insert rowid, PostgreSQL's RETURNING id.
func (t *txn) insertID(ctx context.Context, q string, args ...any) (int64, error) {
	if !t.pg {
		res, err := t.ExecContext(ctx, q, args...)
		if err != nil {
			return 0, err
		}
		return res.LastInsertId()
	}
	var id int64
	err := t.QueryRowContext(ctx, q+" RETURNING id", args...).Scan(&id)
	return id, err
}

// dbq reads outside a transaction, rewriting ? as txn does.
type dbq struct {
	db *sql.DB
	pg bool
}

func (q dbq) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return q.db.QueryContext(ctx, rebind(q.pg, query), args...)
}

func (q dbq) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return q.db.QueryRowContext(ctx, rebind(q.pg, query), args...)
}

func (s *Store) q() dbq { return dbq{db: s.db, pg: s.pg != nil} }

func (s *Store) queryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return s.q().QueryContext(ctx, q, args...)
}

func (s *Store) queryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	return s.q().QueryRowContext(ctx, q, args...)
}

// rebind rewrites the ? parameters of q as $1, $2, ... for PostgreSQL. A ?
// inside a quoted string or identifier is left alone.
func rebind(pg bool, q string) string {
	if !pg || !strings.Contains(q, "?") {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + 16)
	n := 0
	var quote byte
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == '?':
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// limit is the LIMIT argument for at most n rows, n <= 0 meaning all:
// SQLite takes -1 for no limit, PostgreSQL NULL.
func (s *Store) limit(n int) any {
	if n > 0 {
		return n
	}
	if s.pg != nil {
		return nil
	}
	return -1
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// timeLayout is RFC 3339 with nanoseconds at a fixed width, so that stored
// times sort as text and read well in the sqlite3 shell.
const timeLayout = "2006-01-02T15:04:05.000000000Z07:00"

func formatTime(t time.Time) string { return t.UTC().Format(timeLayout) }

func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("state: bad stored time %q: %w", s, err)
	}
	return t.UTC(), nil
}

func parseNullTime(s sql.NullString) (time.Time, error) {
	if !s.Valid {
		return time.Time{}, nil
	}
	return parseTime(s.String)
}
