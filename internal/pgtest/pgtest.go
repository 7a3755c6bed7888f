// Package pgtest runs a real PostgreSQL server for the tests of the
// PostgreSQL state store: Debian's postgresql (initdb, then postgres), with
// its data directory and its unix socket in a temporary directory, listening
// on 127.0.0.1 on a port chosen free, with a superuser "tend" whose random
// password the server asks for over TCP (scram-sha-256).
//
// One server serves a test binary: the first test that asks for a database
// starts it, and Main stops it (and removes its directory) when the tests
// are done; a package whose tests use it calls Main from its TestMain. Each
// DSN is a new, empty database on it, dropped when its test ends.
//
// initdb and postgres refuse to run as root. As root (CI, the developers'
// machines), they run as the unprivileged user nobody (or tend-pg, created
// when there is no nobody), which owns the temporary directory; the server
// gets SIGQUIT (an immediate shutdown) if the test binary dies before Main
// stops it.
//
// The binaries come from hack/postgres.sh (the newest
// /usr/lib/postgresql/*/bin, or TEND_POSTGRES_BIN). When they are not there,
// the test skips; with TEND_REQUIRE_POSTGRES=1 they are installed with
// hack/postgres.sh install (root: apt-get install postgresql), and the test
// fails when that fails. It must not be imported by anything but tests.
package pgtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

const (
	// RequireEnv set to 1 turns a missing PostgreSQL from a skip into a
	// failure (after trying to install it).
	RequireEnv = "TEND_REQUIRE_POSTGRES"
	// BinEnv names the directory holding initdb and postgres.
	BinEnv = "TEND_POSTGRES_BIN"
	// User is the server's superuser.
	User = "tend"
)

// Server is a running PostgreSQL server.
type Server struct {
	// Dir holds the data directory (data), the socket directory (sock)
	// and the server's log (postgres.log).
	Dir string
	// Host and Port are where it listens on TCP (127.0.0.1).
	Host string
	Port int
	// Password is User's password.
	Password string

	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// Required reports whether TEND_REQUIRE_POSTGRES=1.
func Required() bool { return os.Getenv(RequireEnv) == "1" }

var (
	mu       sync.Mutex
	shared   *Server
	startErr error
	skipErr  error
	dbSeq    int
)

// Main runs the tests and then stops the server if a test started it.
func Main(m *testing.M) {
	code := m.Run()
	Stop()
	os.Exit(code)
}

// Stop stops the shared server and removes its directory. Main calls it.
func Stop() {
	mu.Lock()
	defer mu.Unlock()
	if shared != nil {
		shared.stop()
		shared = nil
	}
}

// Start returns the shared server, starting it first. It skips the test
// when PostgreSQL is not installed (unless Required), and fails it when the
// server does not start.
func Start(t testing.TB) *Server {
	t.Helper()
	s, skip, err := Ensure(t.Logf)
	if skip != nil {
		t.Skipf("pgtest: %v (set %s=1 to make this a failure)", skip, RequireEnv)
	}
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	return s
}

// Ensure returns the shared server, starting it first, for callers without
// a testing.TB (test scripts). skip is set when PostgreSQL is not installed
// and not Required; err when it could not be started.
func Ensure(logf func(string, ...any)) (s *Server, skip, err error) {
	mu.Lock()
	defer mu.Unlock()
	if shared != nil {
		return shared, nil, nil
	}
	if skipErr != nil || startErr != nil {
		return nil, skipErr, startErr
	}
	bin, err := binDir(logf)
	if err != nil {
		if Required() {
			startErr = fmt.Errorf("%v (%s=1)", err, RequireEnv)
			return nil, nil, startErr
		}
		skipErr = err
		return nil, skipErr, nil
	}
	for attempt := 1; ; attempt++ {
		s, err := start(bin)
		if err == nil {
			shared = s
			return s, nil, nil
		}
		if attempt == 2 || !strings.Contains(err.Error(), "could not bind") && !strings.Contains(err.Error(), "already in use") {
			startErr = err
			return nil, nil, err
		}
	}
}

// DSN creates a new, empty database on the shared server and returns its
// URL (postgres://tend:PASSWORD@127.0.0.1:PORT/NAME?sslmode=disable). The
// database is dropped when the test ends.
func DSN(t testing.TB) string {
	t.Helper()
	s := Start(t)
	dsn, drop, err := s.NewDatabase()
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(drop)
	return dsn
}

// NewDatabase creates a new, empty database and returns its URL, and drop,
// which drops it (cutting the connections left to it first: a store not
// closed, a lease whose connection holds a lock).
func (s *Server) NewDatabase() (dsn string, drop func(), err error) {
	mu.Lock()
	dbSeq++
	name := fmt.Sprintf("t%d_%s", dbSeq, randomHex(4))
	mu.Unlock()
	if err := s.exec(context.Background(), "CREATE DATABASE "+name); err != nil {
		return "", nil, fmt.Errorf("create database: %w", err)
	}
	drop = func() {
		_ = s.exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	}
	return s.URL(name), drop, nil
}

// URL is the URL of database name on the server, with the password.
func (s *Server) URL(name string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword(User, s.Password),
		Host:     net.JoinHostPort(s.Host, strconv.Itoa(s.Port)),
		Path:     "/" + name,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// Exec runs sql as the superuser in the database postgres.
func (s *Server) Exec(ctx context.Context, sql string) error { return s.exec(ctx, sql) }

func (s *Server) exec(ctx context.Context, sql string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.URL("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql)
	return err
}

// binDir runs hack/postgres.sh bindir, or install when Required.
func binDir(logf func(string, ...any)) (string, error) {
	script, err := findScript()
	if err != nil {
		return "", err
	}
	if out, err := exec.Command("bash", script, "bindir").Output(); err == nil {
		return strings.TrimSpace(string(out)), nil
	}
	if !Required() {
		return "", fmt.Errorf("PostgreSQL is not installed: run %s install (Debian's postgresql package)", script)
	}
	logf("pgtest: installing PostgreSQL with %s install", script)
	cmd := exec.Command("bash", script, "install")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s install: %v\n%s", script, err, stderr.String())
	}
	return strings.TrimSpace(stdout.String()), nil
}

// findScript finds hack/postgres.sh in the module that holds the current
// directory (a test runs in its package's directory).
func findScript() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(dir, "hack", "postgres.sh")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("hack/postgres.sh not found above the current directory")
		}
		dir = parent
	}
}

// runAs is the user initdb and postgres run as when this process is root:
// nobody, else a system user tend-pg created for it.
func runAs() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		if u, err = user.Lookup("tend-pg"); err != nil {
			out, cerr := exec.Command("useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "tend-pg").CombinedOutput()
			if cerr != nil {
				return nil, fmt.Errorf("no user nobody, and useradd tend-pg: %v: %s", cerr, out)
			}
			if u, err = user.Lookup("tend-pg"); err != nil {
				return nil, err
			}
		}
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, err
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, err
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}, nil
}

func start(bin string) (s *Server, err error) {
	cred, err := runAs()
	if err != nil {
		return nil, err
	}
	// As root, the server's user must be able to pass through every
	// directory above its own: $TMPDIR may be under root's home.
	base := os.TempDir()
	if cred != nil && !searchable(base) {
		base = "/tmp"
	}
	dir, err := os.MkdirTemp(base, "tend-pg-")
	if err != nil {
		return nil, err
	}
	s = &Server{Dir: dir, Host: "127.0.0.1", Password: randomHex(16)}
	defer func() {
		if err != nil {
			s.stop()
		}
	}()
	data, sock, pwfile := filepath.Join(dir, "data"), filepath.Join(dir, "sock"), filepath.Join(dir, "pw")
	for _, d := range []string{data, sock} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return nil, err
		}
	}
	if err := os.WriteFile(pwfile, []byte(s.Password+"\n"), 0o600); err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, "postgres.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	if cred != nil {
		// The directory itself stays root's; nobody only passes through
		// it to what it owns.
		if err := os.Chmod(dir, 0o711); err != nil {
			return nil, err
		}
		for _, p := range []string{data, sock, pwfile, logPath} {
			if err := os.Chown(p, int(cred.Uid), int(cred.Gid)); err != nil {
				return nil, err
			}
		}
	}
	env := []string{"PATH=/usr/bin:/bin", "LANG=C", "LC_ALL=C"}
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-U", User, "--pwfile", pwfile,
		"--auth-host", "scram-sha-256", "--auth-local", "trust", "-E", "UTF8", "--locale", "C", "--no-sync")
	initdb.Env, initdb.Dir = env, dir
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGKILL}
	if out, err := initdb.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("initdb: %v\n%s", err, out)
	}
	_ = os.Remove(pwfile)

	port, err := freePort()
	if err != nil {
		return nil, err
	}
	s.Port = port
	// Durability is not what these tests are about: no fsync.
	s.cmd = exec.Command(filepath.Join(bin, "postgres"), "-D", data, "-p", strconv.Itoa(port), "-k", sock,
		"-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off",
		"-c", "full_page_writes=off", "-c", "max_connections=200", "-c", "shared_buffers=32MB")
	s.cmd.Env, s.cmd.Dir = env, dir
	s.cmd.Stdout, s.cmd.Stderr = logFile, logFile
	// Pdeathsig is set after the change of user, so it holds for postgres.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGQUIT, Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	s.done = make(chan struct{})
	go func() { s.err = s.cmd.Wait(); close(s.done) }()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		err := s.exec(ctx, "SELECT 1")
		if err == nil {
			return s, nil
		}
		select {
		case <-s.done:
			return nil, fmt.Errorf("postgres exited (%v); its log:\n%s", s.err, tail(logPath, 30))
		case <-ctx.Done():
			return nil, fmt.Errorf("postgres did not answer: %v; its log:\n%s", err, tail(logPath, 30))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// stop shuts the server down (fast: SIGINT; then SIGQUIT, then SIGKILL)
// and removes its directory.
func (s *Server) stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGQUIT, syscall.SIGKILL} {
			_ = s.cmd.Process.Signal(sig)
			select {
			case <-s.done:
			case <-time.After(10 * time.Second):
				continue
			}
			break
		}
	}
	_ = os.RemoveAll(s.Dir)
}

// searchable reports whether anyone may pass through dir and every
// directory above it (the x bit for others).
func searchable(dir string) bool {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return false
	}
	for {
		fi, err := os.Stat(dir)
		if err != nil || fi.Mode().Perm()&0o001 == 0 {
			return false
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return true
		}
		dir = parent
	}
}

func tail(path string, n int) string {
	data, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// CPUTime is the user and system CPU time that the server's processes
// (the postmaster and the live backends and workers it started) have used
// so far, from /proc; a backend that has exited no longer counts, so take
// the difference over a span in which the connections stay open.
func (s *Server) CPUTime() time.Duration {
	if s.cmd == nil || s.cmd.Process == nil {
		return 0
	}
	root := s.cmd.Process.Pid
	entries, _ := os.ReadDir("/proc")
	var ticks int64
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// Past the command name in parentheses: state ppid ... utime(14) stime(15).
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 13 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		if pid != root && ppid != root {
			continue
		}
		ut, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		ticks += ut + st
	}
	// Linux reports these in clock ticks of 1/100 s (USER_HZ).
	return time.Duration(ticks) * 10 * time.Millisecond
}
