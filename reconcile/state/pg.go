package state

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// Advisory lock keys (pg_advisory_lock(lockClass, key)): the class is
// "tend" in ASCII, so that tend's locks stand apart from any other
// application's in the same database.
const (
	lockClass int32 = 0x74656e64
	// writeLockKey serializes the store's write transactions (a
	// transaction-scoped lock).
	writeLockKey int32 = 1
)

// pgConnectTimeout bounds how long opening a PostgreSQL store waits for the
// server when the URL sets no connect_timeout.
const pgConnectTimeout = 10 * time.Second

// pgStore is what a PostgreSQL store has beyond a SQLite one.
type pgStore struct {
	// password is the URL's password, kept to take it out of errors.
	password string
}

// IsPostgresURL reports whether s names a PostgreSQL store
// (postgres://... or postgresql://...).
func IsPostgresURL(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

// RedactURL is the PostgreSQL URL u without its password (in the user info
// or as a password parameter), for output and logs.
func RedactURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "postgres://(a URL that cannot be parsed)"
	}
	if p.User != nil {
		if _, ok := p.User.Password(); ok {
			p.User = url.UserPassword(p.User.Username(), "xxxxx")
		}
	}
	q := p.Query()
	if q.Has("password") {
		q.Set("password", "xxxxx")
		p.RawQuery = q.Encode()
	}
	return p.String()
}

// urlPassword is the password u carries, if any.
func urlPassword(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return ""
	}
	if p.User != nil {
		if pw, ok := p.User.Password(); ok && pw != "" {
			return pw
		}
	}
	return p.Query().Get("password")
}

// scrub takes the password out of err's text. The error keeps its chain
// (errors.Is and As see through it) when its text holds no password.
func (p *pgStore) scrub(err error) error {
	if err == nil || p == nil || p.password == "" || !strings.Contains(err.Error(), p.password) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), p.password, "xxxxx"))
}

// OpenPostgres opens the store in the PostgreSQL database the URL names
// (postgres://USER:PASSWORD@HOST:PORT/DATABASE?sslmode=...; any pgx
// parameter, and PGPASSWORD or ~/.pgpass for the password), creates its
// tables (the same numbered migrations as SQLite's, in PostgreSQL's types)
// when they are not there, and gives the store its identity. The password
// appears in no error, nor in Path, which is the URL without it.
//
// The database is shared: several tends, on several hosts, may open it at
// once. Its writes are serialized by a transaction-scoped advisory lock, and
// the apply lock is a session-scoped advisory lock (Lock), which the server
// frees when the holder's connection ends.
func OpenPostgres(dsn string) (*Store, error) {
	p := &pgStore{password: urlPassword(dsn)}
	display := RedactURL(dsn)
	fail := func(err error) (*Store, error) {
		return nil, p.scrub(fmt.Errorf("state: open %s: %w", display, err))
	}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return fail(err)
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = pgConnectTimeout
	}
	db := stdlib.OpenDB(*cfg)
	db.SetMaxIdleConns(4)
	s := &Store{db: db, pg: p, path: dsn, display: display, now: time.Now}
	ctx, cancel := context.WithTimeout(context.Background(), pgConnectTimeout+5*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return fail(err)
	}
	if err := s.migrate(); err != nil {
		db.Close()
		return fail(err)
	}
	if s.ident, err = s.ensureIdentity(nil); err != nil {
		db.Close()
		return fail(err)
	}
	return s, nil
}

// inspectPostgres is Inspect of a PostgreSQL store: it connects (without
// creating or migrating anything) and reads the schema version, the
// identity and the rows of each table.
func inspectPostgres(ctx context.Context, dsn string) (*Report, error) {
	p := &pgStore{password: urlPassword(dsn)}
	start := time.Now()
	r := &Report{Backend: "postgres", Path: RedactURL(dsn), KnownSchema: schemaVersion()}
	defer func() { r.Elapsed = time.Since(start) }()
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, p.scrub(fmt.Errorf("state: %s: %w", r.Path, err))
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = pgConnectTimeout
	}
	db := stdlib.OpenDB(*cfg)
	defer db.Close()
	rows, err := db.QueryContext(ctx, `SELECT table_name FROM information_schema.tables
		WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name`)
	if err != nil {
		return nil, p.scrub(fmt.Errorf("state: %s: %w", r.Path, err))
	}
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return nil, p.scrub(err)
		}
		names = append(names, n)
	}
	rows.Close()
	if !slices.Contains(names, "schema_migrations") {
		r.Absent = "no tables (a new, empty database)"
		return r, nil
	}
	r.Exists = true
	cannot := func(what string, err error) { r.Errors = append(r.Errors, what+": "+p.scrub(err).Error()) }
	for _, name := range names {
		tr := TableRows{Table: name}
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM "`+strings.ReplaceAll(name, `"`, `""`)+`"`).Scan(&tr.Rows); err != nil {
			tr.Error = p.scrub(err).Error()
		}
		r.Tables = append(r.Tables, tr)
	}
	if err := db.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&r.SchemaVersion); err != nil {
		cannot("the schema version cannot be read", err)
	}
	if slices.Contains(names, "store_identity") {
		if r.Identity, err = loadIdentity(ctx, db); err != nil {
			cannot("the identity cannot be read", err)
		}
	}
	return r, nil
}

// pgDDL is a migration's SQL in PostgreSQL's types: 64-bit integers (the
// same range as SQLite's INTEGER), BYTEA for BLOB, an identity column for
// INTEGER PRIMARY KEY AUTOINCREMENT, and no WITHOUT ROWID. Times stay TEXT
// in the same fixed-width form, so that they sort the same on both.
func pgDDL(q string) string {
	return strings.NewReplacer(
		"INTEGER PRIMARY KEY AUTOINCREMENT", "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
		"INTEGER", "BIGINT",
		"BLOB", "BYTEA",
		") WITHOUT ROWID;", ");",
	).Replace(q)
}
