package state

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// ErrDamaged is wrapped by the errors of a store that SQLite finds
// malformed, on open, in QuickCheck, or in any read or write.
var ErrDamaged = errors.New("the state store is damaged")

// ErrStoreRemoved is wrapped by the error of a write to a store whose file
// was removed or replaced while it was open: what tend records would go to
// a deleted file and be lost.
var ErrStoreRemoved = errors.New("the state store was removed while tend ran")

// isCorrupt reports whether err is SQLite saying the file is malformed or
// not a database at all.
func isCorrupt(err error) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	switch se.Code() & 0xff {
	case sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB:
		return true
	}
	return false
}

// damagedError says that the store at path is damaged and how to recover.
func damagedError(path, detail string) error {
	base := filepath.Base(path)
	return fmt.Errorf("%w: SQLite finds %s malformed (%s), so tend will not use it. "+
		"Keep the file as it is (copy %s and any %s-wal beside it aside first), run tend store check for details, "+
		"and restore %s from a backup; or move %s and %s aside to start a new, empty store (history, holds and rollback snapshots are lost then)",
		ErrDamaged, path, detail, base, base, path, base, filepath.Base(MarkerPath(path)))
}

// annotate turns a SQLite corruption error into one that names the file
// and the way out.
func annotate(path string, err error) error {
	if err == nil || !isCorrupt(err) {
		return err
	}
	return damagedError(path, err.Error())
}

// checkFile refuses to write when the store's file is no longer the one
// Open opened: removed (with the state directory, say) or replaced. SQLite
// would go on writing to the deleted file, and everything recorded from
// then on would be lost without a word.
func (s *Store) checkFile() error {
	if s.pg != nil {
		return nil
	}
	fi, err := os.Stat(s.abs)
	if err == nil && os.SameFile(fi, s.file) {
		return nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil // unreadable: let SQLite say what it finds
	}
	dir := filepath.Dir(s.abs)
	what := fmt.Sprintf("%s was removed", s.abs)
	switch {
	case err == nil:
		what = fmt.Sprintf("%s was replaced by another file", s.abs)
	case !exists(dir):
		what = fmt.Sprintf("the state directory %s was removed, and %s with it", dir, filepath.Base(s.abs))
	}
	return fmt.Errorf("%w: %s; what tend does from now on could only be recorded in the deleted file, and would be lost, so tend stops here. "+
		"Whatever runs keeps running. Put %s back from a backup and run tend again (run without it, tend starts a new, empty store)",
		ErrStoreRemoved, what, s.abs)
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// QuickCheck runs SQLite's quick_check over the whole store and returns an
// error wrapping ErrDamaged when it finds the store malformed. It reads
// every page: about 0.5 s for a store of 100,000 revisions (200 MB), a few
// milliseconds for a small one, so tend runs it when a command that writes
// opens the store, not on every open.
//
// On a PostgreSQL store it does nothing: the server looks after its pages.
func (s *Store) QuickCheck(ctx context.Context) error {
	if s.pg != nil {
		return nil
	}
	problems, err := pragmaList(ctx, s.db, `PRAGMA quick_check(5)`)
	if err != nil {
		if isCorrupt(err) {
			return damagedError(s.abs, err.Error())
		}
		return fmt.Errorf("state: quick check of %s: %w", s.abs, err)
	}
	if len(problems) == 1 && problems[0] == "ok" {
		return nil
	}
	lines := Lines(problems)
	detail := strings.Join(lines[:min(len(lines), 3)], "; ")
	if len(lines) > 3 {
		detail += "; more in tend store check"
	}
	return damagedError(s.abs, "quick_check: "+detail)
}

// Lines splits what integrity_check and quick_check answer into one
// finding a line, without the "*** in database main ***" heading.
func Lines(found []string) []string {
	var out []string
	for _, f := range found {
		for l := range strings.SplitSeq(f, "\n") {
			if l = strings.TrimSpace(l); l != "" && l != "*** in database main ***" {
				out = append(out, l)
			}
		}
	}
	return out
}

// pragmaList runs a pragma that answers with rows of one text column.
func pragmaList(ctx context.Context, db *sql.DB, pragma string) ([]string, error) {
	rows, err := db.QueryContext(ctx, pragma)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// Report is what Inspect found.
type Report struct {
	// Backend is "sqlite" or "postgres". A PostgreSQL store's Path is its
	// URL without the password; its pages are the server's to check, so
	// Integrity and ForeignKeys stay empty, and Size and WALSize 0.
	Backend string `json:"backend"`
	Path    string `json:"path"`
	Exists  bool   `json:"exists"`
	// Absent says why a store that does not exist does not: "missing", or
	// "empty (0 bytes)".
	Absent string `json:"absent,omitempty"`
	// Size is the database file's size, WALSize its write-ahead log's.
	Size    int64 `json:"size"`
	WALSize int64 `json:"wal_size"`
	// Identity is the store's, nil when it has none (a store older than
	// identities, or one that cannot be read). Marker is the identity the
	// marker file beside the database holds, nil without a marker.
	Identity   *Identity `json:"identity"`
	MarkerPath string    `json:"marker_path"`
	Marker     *Identity `json:"marker"`
	// IdentityProblem says what is wrong between the database and the
	// marker, as Open would refuse it; empty when nothing is.
	IdentityProblem string `json:"identity_problem,omitempty"`
	// SchemaVersion is the newest migration the store records; KnownSchema
	// the newest this tend knows.
	SchemaVersion int `json:"schema_version"`
	KnownSchema   int `json:"known_schema_version"`
	// Tables counts the rows of each table.
	Tables []TableRows `json:"tables"`
	// Integrity lists what integrity_check found, a finding an item;
	// ["ok"] when nothing.
	Integrity []string `json:"integrity"`
	// ForeignKeys lists the rows whose reference points nowhere; nil when
	// foreign_key_check could not run.
	ForeignKeys []string `json:"foreign_keys"`
	// Errors says what could not be read at all (SQLite found it
	// malformed).
	Errors  []string      `json:"errors,omitempty"`
	Elapsed time.Duration `json:"elapsed_ns"`
}

// TableRows is one table's row count; Error is set when it cannot be
// counted.
type TableRows struct {
	Table string `json:"table"`
	Rows  int64  `json:"rows"`
	Error string `json:"error,omitempty"`
}

// Damaged reports whether SQLite found the store malformed or could not
// read it. A store that does not exist is not damaged.
func (r *Report) Damaged() bool {
	if !r.Exists {
		return false
	}
	if len(r.Errors) > 0 || len(r.ForeignKeys) > 0 {
		return true
	}
	if r.Backend != "postgres" && !(len(r.Integrity) == 1 && r.Integrity[0] == "ok") {
		return true
	}
	for _, t := range r.Tables {
		if t.Error != "" {
			return true
		}
	}
	return false
}

// OK reports whether the store is whole and is the one the marker names
// (or, without a marker, whether no store was expected).
func (r *Report) OK() bool { return r.IdentityProblem == "" && !r.Damaged() }

// Inspect runs the full checks on the store at path, as tend store check
// does: SQLite's integrity_check (every page, every index entry; slower
// than QuickCheck) and foreign_key_check, the identity against the marker,
// the schema version and the row count of each table. It changes nothing:
// it neither creates nor migrates the store nor touches the marker, runs
// its statements read-only (query_only), and works on a store Open
// refuses. (Closing it may checkpoint the write-ahead log into the
// database, as closing any connection does.) An error is returned only when the check
// could not run; what it found is in the report.
func Inspect(ctx context.Context, path string) (*Report, error) {
	if path == "" {
		return nil, errors.New("state: empty store path")
	}
	if IsPostgresURL(path) {
		return inspectPostgres(ctx, path)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	start := time.Now()
	r := &Report{Backend: "sqlite", Path: abs, MarkerPath: MarkerPath(abs), KnownSchema: schemaVersion()}
	defer func() { r.Elapsed = time.Since(start) }()
	mark, err := readMarker(r.MarkerPath)
	if err != nil {
		r.IdentityProblem = err.Error()
	}
	r.Marker = mark
	what, err := absence(abs)
	if err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	if fi, err := os.Stat(abs); err == nil {
		r.Exists, r.Size = true, fi.Size()
	}
	if fi, err := os.Stat(abs + "-wal"); err == nil {
		r.WALSize = fi.Size()
	}
	if what != "" {
		r.Exists, r.Absent = false, what
		if mark != nil {
			r.IdentityProblem = missingError(abs, r.MarkerPath, *mark, what).Error()
		}
		return r, nil
	}

	// Read-write without create (mode=rw), so that a store in WAL mode can
	// be read; query_only keeps every statement from writing.
	q := url.Values{}
	q.Set("mode", "rw")
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()))
	q.Add("_pragma", "query_only(1)")
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(abs), RawQuery: q.Encode()}
	db, err := sql.Open("sqlite", u.String())
	if err != nil {
		return nil, fmt.Errorf("state: open %s: %w", abs, err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)

	// Each step goes on when the one before found damage: what can still
	// be read is worth knowing.
	cannot := func(what string, err error) { r.Errors = append(r.Errors, what+": "+err.Error()) }
	found, err := pragmaList(ctx, db, `PRAGMA integrity_check`)
	switch {
	case err != nil && !isCorrupt(err):
		return nil, fmt.Errorf("state: integrity check of %s: %w", abs, err)
	case err != nil:
		cannot("integrity_check could not run", err)
	case len(found) == 1 && found[0] == "ok":
		r.Integrity = found
	default:
		r.Integrity = Lines(found)
	}
	r.ForeignKeys, err = foreignKeyCheck(ctx, db)
	if err != nil {
		cannot("foreign_key_check could not run", err)
	}
	names, err := tableNames(ctx, db)
	if err != nil {
		cannot("the list of tables cannot be read", err)
	}
	for _, name := range names {
		tr := TableRows{Table: name}
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM "`+strings.ReplaceAll(name, `"`, `""`)+`"`).Scan(&tr.Rows); err != nil {
			tr.Error = err.Error()
		}
		r.Tables = append(r.Tables, tr)
		if tr.Error != "" {
			continue
		}
		switch name {
		case "schema_migrations":
			if err := db.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&r.SchemaVersion); err != nil {
				cannot("the schema version cannot be read", err)
			}
		case "store_identity":
			if r.Identity, err = loadIdentity(ctx, db); err != nil {
				cannot("the identity cannot be read", err)
			}
		}
	}
	if r.IdentityProblem == "" && mark != nil && r.Identity != nil && r.Identity.ID != mark.ID {
		r.IdentityProblem = mismatchError(abs, r.MarkerPath, *r.Identity, *mark).Error()
	}
	return r, nil
}

// foreignKeyCheck lists the rows whose reference points nowhere.
func foreignKeyCheck(ctx context.Context, db *sql.DB) ([]string, error) {
	rows, err := db.QueryContext(ctx, `PRAGMA foreign_key_check`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var table, parent string
		var rowid sql.NullInt64
		var fkid int
		if err := rows.Scan(&table, &rowid, &parent, &fkid); err != nil {
			return nil, err
		}
		out = append(out, fmt.Sprintf("%s row %d refers to a missing row of %s", table, rowid.Int64, parent))
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

func tableNames(ctx context.Context, db *sql.DB) ([]string, error) {
	return pragmaList(ctx, db, `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`)
}
