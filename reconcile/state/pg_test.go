package state

import (
	"bufio"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

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

// lockHolderEnv makes the test binary the tend of
// TestPostgresLockGoesWithSession: it takes the apply lock of the store
// named, leaves a revision pending, says "locked" and waits to be killed.
const lockHolderEnv = "TEND_TEST_PG_LOCK_HOLDER"

func holdLock(dsn string) {
	s, err := Open(dsn)
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	if _, err := s.Lock(LockInfo{Owner: "tend run", Operation: "run", Host: "another-host.example"}, time.Hour); err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	if _, err := s.BeginRevision(Revision{Server: "web"}); err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	fmt.Println("locked")
	select {}
}

// The apply lock on PostgreSQL is the session's: a tend killed with -9
// holds it until its connection goes, and the next tend takes it over at
// once and sees what it left pending, though the lock was an hour from
// expiry and its holder says it ran on another host (where no PID can be
// checked: on SQLite it would stay locked for the hour).
func TestPostgresLockGoesWithSession(t *testing.T) {
	dsn := pgtest.DSN(t)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), lockHolderEnv+"="+dsn)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "locked\n" {
		t.Fatalf("the other tend said %q (%v)", line, err)
	}
	pid := cmd.Process.Pid

	b, err := Open(dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	_, err = b.Lock(applyInfo, time.Hour)
	var locked *LockedError
	if !errors.As(err, &locked) || locked.Holder.PID != pid || locked.Holder.Owner != "tend run" {
		t.Fatalf("Lock while the other tend lives = %v, want *LockedError naming pid %d", err, pid)
	}
	if h, err := b.LockHolder(); err != nil || h == nil || h.PID != pid {
		t.Fatalf("LockHolder = %+v, %v", h, err)
	}

	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	killed := time.Now()
	var lease *Lease
	for {
		lease, err = b.Lock(applyInfo, time.Hour)
		if err == nil {
			break
		}
		if !errors.As(err, &locked) || time.Since(killed) > 10*time.Second {
			t.Fatalf("Lock after the holder was killed: %v (after %s)", err, time.Since(killed))
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("taken over %s after kill -9: %s", time.Since(killed).Round(time.Millisecond), lease.TakeoverReason)
	if lease.TookOverFrom == nil || lease.TookOverFrom.PID != pid || !strings.Contains(lease.TakeoverReason, "session ended") {
		t.Errorf("TookOverFrom = %+v (%q), want pid %d whose session ended", lease.TookOverFrom, lease.TakeoverReason, pid)
	}
	if n, err := b.MarkInterrupted(time.Time{}); err != nil || n != 1 {
		t.Errorf("MarkInterrupted = %d, %v; want the revision the killed tend left pending", n, err)
	}
	if err := lease.Release(); err != nil {
		t.Fatal(err)
	}
	if h, err := b.LockHolder(); err != nil || h != nil {
		t.Errorf("LockHolder after Release = %+v, %v", h, err)
	}
}

// The lock row a dead tend left behind is not a holder: LockHolder says
// the lock is free, and ForceUnlock finds nothing to release.
func TestPostgresStaleRowIsNoHolder(t *testing.T) {
	a, err := Open(pgtest.DSN(t))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	lease, err := a.Lock(applyInfo, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	// The session ends without a release: close the lease's connection
	// under it.
	if err := lease.conn.Raw(func(c any) error { return c.(interface{ Close() error }).Close() }); err != nil {
		t.Fatal(err)
	}
	if h, err := a.LockHolder(); err != nil || h != nil {
		t.Errorf("LockHolder with only a stale row = %+v, %v", h, err)
	}
	if err := lease.Refresh(time.Hour); !errors.Is(err, ErrLockLost) || !strings.Contains(err.Error(), "connection") {
		t.Errorf("Refresh after the session ended = %v, want ErrLockLost", err)
	}
	if h, err := a.ForceUnlock(); err != nil || h != nil {
		t.Errorf("ForceUnlock of a stale row = %+v, %v", h, err)
	}
}
