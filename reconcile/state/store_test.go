package state

import (
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/tendhq/tend/internal/pgtest"
)

func TestMain(m *testing.M) {
	if dsn := os.Getenv(lockHolderEnv); dsn != "" {
		holdLock(dsn) // TestPostgresLockGoesWithSession's other tend
		return
	}
	pgtest.Main(m)
}

// backends runs fn once on each backend of the store, as the subtests
// sqlite and postgres: openStore opens a store of the backend its test's
// name ends in. The postgres subtest skips when PostgreSQL is not installed
// (and fails with TEND_REQUIRE_POSTGRES=1).
func backends(t *testing.T, fn func(t *testing.T)) {
	t.Run("sqlite", fn)
	t.Run("postgres", fn)
}

// onPostgres reports whether t runs under backends' postgres subtest.
func onPostgres(t testing.TB) bool {
	return slices.Contains(strings.Split(t.Name(), "/"), "postgres")
}

// openStore opens a new store: a SQLite file in a directory that does not
// exist yet, or, under backends' postgres subtest, a new, empty PostgreSQL
// database.
func openStore(t testing.TB) *Store {
	t.Helper()
	path := filepath.Join(t.TempDir(), "var", "tend", "state.db")
	if onPostgres(t) {
		path = pgtest.DSN(t)
	}
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func reopen(t testing.TB, path string) *Store {
	t.Helper()
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// tables lists the store's tables, by name.
func tables(t *testing.T, s *Store) []string {
	t.Helper()
	q := `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`
	if s.pg != nil {
		q = `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() ORDER BY table_name`
	}
	rows, err := s.db.Query(q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		names = append(names, n)
	}
	return names
}

func migrationRows(t *testing.T, db *sql.DB) []int {
	t.Helper()
	vs, err := appliedVersions(t.Context(), db)
	if err != nil {
		t.Fatal(err)
	}
	return vs
}

func TestOpenMigratesAndReopens(t *testing.T) {
	backends(t, func(t *testing.T) {
		s := openStore(t)
		want := "approvals backups contracts drills holds lock revisions scale_decisions scale_targets schema_migrations sources store_identity usage_samples"
		if got := strings.Join(tables(t, s), " "); got != want {
			t.Fatalf("tables = %q, want %q", got, want)
		}
		if got := migrationRows(t, s.db); len(got) != len(migrations) || got[len(got)-1] != schemaVersion() {
			t.Fatalf("schema_migrations = %v, want versions 1..%d", got, schemaVersion())
		}
		for _, idx := range []string{"revisions_server_id", "revisions_outcome_server_id"} {
			var n int
			q := `SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = ?`
			if s.pg != nil {
				q = `SELECT count(*) FROM pg_indexes WHERE schemaname = current_schema() AND indexname = $1`
			}
			if err := s.db.QueryRow(q, idx).Scan(&n); err != nil || n != 1 {
				t.Errorf("index %s: n=%d err=%v", idx, n, err)
			}
		}

		// Data survives a reopen, and reopening applies nothing twice.
		id, err := s.BeginRevision(Revision{Server: "web"})
		if err != nil {
			t.Fatal(err)
		}
		path := s.path
		s.Close()
		for range 3 {
			s2 := reopen(t, path)
			if got := migrationRows(t, s2.db); len(got) != len(migrations) {
				t.Fatalf("after reopen schema_migrations = %v", got)
			}
			if _, err := s2.Revision(id); err != nil {
				t.Fatal(err)
			}
			s2.Close()
		}
	})
}

func TestOpenPragmas(t *testing.T) {
	s := openStore(t)
	// Every connection of the pool gets the pragmas: hold a few at once.
	var conns []*sql.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range 3 {
		c, err := s.db.Conn(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		for pragma, want := range map[string]string{
			"journal_mode": "wal",
			"busy_timeout": "5000",
			"foreign_keys": "1",
			"synchronous":  "1", // NORMAL
		} {
			var got string
			if err := c.QueryRowContext(t.Context(), "PRAGMA "+pragma).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Errorf("PRAGMA %s = %s, want %s", pragma, got, want)
			}
		}
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	backends(t, func(t *testing.T) {
		s := openStore(t)
		future := schemaVersion() + 1
		if _, err := s.db.Exec(rebind(s.pg != nil, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, 'from the future', '2099-01-01T00:00:00Z')`), future); err != nil {
			t.Fatal(err)
		}
		path := s.path
		s.Close()
		s2, err := Open(path)
		if err == nil {
			s2.Close()
			t.Fatal("Open accepted a store with a newer schema")
		}
		if !errors.Is(err, ErrSchemaTooNew) {
			t.Fatalf("err = %v, want ErrSchemaTooNew", err)
		}
		for _, want := range []string{s.Path(), "newer tend", "upgrade tend"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not mention %q", err, want)
			}
		}
		t.Log(err)
	})
}

func TestFileModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new")
	path := filepath.Join(dir, "state.db")
	s := reopen(t, path)
	// Write something so that the WAL exists.
	if _, err := s.BeginRevision(Revision{Server: "web"}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if m := fi.Mode().Perm(); m != 0o600 {
			t.Errorf("%s: mode %o, want 600", filepath.Base(p), m)
		}
	}
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if m := fi.Mode().Perm(); m != 0o700 {
		t.Errorf("directory mode %o, want 700", m)
	}
}

func TestOpenOddPath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a dir?#%", "st?ate#1.db")
	s := reopen(t, path)
	if _, err := s.BeginRevision(Revision{Server: "web"}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("store not at its path: %v", err)
	}
	if s.Path() != path {
		t.Errorf("Path() = %q, want %q", s.Path(), path)
	}
}

func TestOpenNotADatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	if err := os.WriteFile(path, []byte(strings.Repeat("not sqlite\n", 100)), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Open(path)
	if err == nil {
		s.Close()
		t.Fatal("Open accepted a file that is not a database")
	}
	if !errors.Is(err, ErrDamaged) {
		t.Errorf("err = %v, want ErrDamaged", err)
	}
	for _, want := range []string{path, "tend store check", "restore " + path + " from a backup"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	t.Log(err)
}

// Several tends opening a new store at once all succeed and migrate it once.
func TestOpenConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	stores := make([]*Store, n)
	for i := range n {
		wg.Go(func() { stores[i], errs[i] = Open(path) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Open %d: %v", i, err)
			continue
		}
		defer stores[i].Close()
	}
	if t.Failed() {
		return
	}
	if got := migrationRows(t, stores[0].db); len(got) != len(migrations) {
		t.Fatalf("schema_migrations = %v", got)
	}
	// One identity, the marker's.
	mark, err := readMarker(MarkerPath(path))
	if err != nil || mark == nil {
		t.Fatalf("marker: %v, %v", mark, err)
	}
	for i, s := range stores {
		if s.Identity() != *mark {
			t.Errorf("store %d: identity %v, marker %v", i, s.Identity(), *mark)
		}
	}
}
