package state

import (
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/tendhq/tend/internal/pgtest"
)

// The password of a PostgreSQL URL appears in no error and not in Path,
// whether the password is right, wrong, or the server is not there.
func TestPostgresPasswordNotShown(t *testing.T) {
	dsn := pgtest.DSN(t)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	pw, _ := u.User.Password()
	s, err := Open(dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if strings.Contains(s.Path(), pw) || !strings.Contains(s.Path(), "xxxxx") || s.Backend() != "postgres" {
		t.Errorf("Path() = %q, Backend() = %q", s.Path(), s.Backend())
	}

	wrong := *u
	wrong.User = url.UserPassword(pgtest.User, "not-"+pw)
	noServer := *u
	noServer.Host = "127.0.0.1:1"
	inQuery := *u
	inQuery.User = url.User(pgtest.User)
	inQuery.RawQuery = "sslmode=disable&password=not-" + pw
	for _, bad := range []*url.URL{&wrong, &noServer, &inQuery} {
		s, err := Open(bad.String())
		if err == nil {
			s.Close()
			t.Fatalf("Open(%s) succeeded", RedactURL(bad.String()))
		}
		if strings.Contains(err.Error(), pw) {
			t.Errorf("error shows the password: %v", err)
		}
		if !strings.Contains(err.Error(), "xxxxx") {
			t.Errorf("error does not name the store (without its password): %v", err)
		}
		t.Log(err)
	}
	for in, want := range map[string]string{
		"postgres://u:secret@h:5432/db":                      "postgres://u:xxxxx@h:5432/db",
		"postgresql://u@h/db?password=secret&sslmode=verify": "postgresql://u@h/db?password=xxxxx&sslmode=verify",
		"postgres://h/db":                                    "postgres://h/db",
	} {
		if got := RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

// Both backends have the same tables with the same columns, in the same
// order.
func TestPostgresSchemaMatchesSQLite(t *testing.T) {
	lite := openStore(t)
	pg, err := Open(pgtest.DSN(t))
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	if a, b := tables(t, lite), tables(t, pg); !slices.Equal(a, b) {
		t.Fatalf("tables: sqlite %v, postgres %v", a, b)
	}
	for _, table := range tables(t, lite) {
		a, b := columns(t, lite, table), columns(t, pg, table)
		if !slices.Equal(a, b) {
			t.Errorf("%s: sqlite columns %v, postgres %v", table, a, b)
		}
	}
}

func columns(t *testing.T, s *Store, table string) []string {
	t.Helper()
	rows, err := s.db.Query(`SELECT * FROM ` + table + ` LIMIT 0`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	return cols
}

// Several tends opening a new PostgreSQL store at once all succeed, migrate
// it once and agree on its identity.
func TestPostgresOpenConcurrent(t *testing.T) {
	dsn := pgtest.DSN(t)
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	stores := make([]*Store, n)
	for i := range n {
		wg.Go(func() { stores[i], errs[i] = Open(dsn) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Open %d: %v", i, err)
		}
		defer stores[i].Close()
	}
	if got := migrationRows(t, stores[0].db); len(got) != len(migrations) {
		t.Fatalf("schema_migrations = %v", got)
	}
	for i, s := range stores {
		if s.Identity() != stores[0].Identity() {
			t.Errorf("store %d: identity %v, store 0 %v", i, s.Identity(), stores[0].Identity())
		}
	}
}

func TestRebind(t *testing.T) {
	for in, want := range map[string]string{
		`SELECT a FROM t WHERE b = ? AND c = ?`:        `SELECT a FROM t WHERE b = $1 AND c = $2`,
		`SELECT '?' FROM t WHERE (? = '' OR s = ?)`:    `SELECT '?' FROM t WHERE ($1 = '' OR s = $2)`,
		`SELECT "odd?name" FROM t WHERE x = ? LIMIT ?`: `SELECT "odd?name" FROM t WHERE x = $1 LIMIT $2`,
	} {
		if got := rebind(true, in); got != want {
			t.Errorf("rebind(%q) = %q, want %q", in, got, want)
		}
		if got := rebind(false, in); got != in {
			t.Errorf("rebind for SQLite changed %q to %q", in, got)
		}
	}
}
