package systemd

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tendhq/tend/internal/testports"
	"github.com/tendhq/tend/providers"
	"github.com/tendhq/tend/providers/systemd/systemdtest"
	"github.com/tendhq/tend/spec"
)

// The test binary is its own workload: run by a unit as a small HTTP
// server (SYSTEMD_TEST_SERVER=1), or as a one-off task (__test-exec).
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "__test-exec" {
		testExecMain()
	}
	if os.Getenv("SYSTEMD_TEST_SERVER") == "1" {
		testServerMain()
		return
	}
	os.Exit(m.Run())
}

// insideTests are the tests that need systemd; TestSystemd runs them in
// the systemd container.
const insideTests = "^(TestConformance|TestInside.*)$"

// TestSystemd runs the tests that need a real systemd inside a container
// with systemd as PID 1 (see systemdtest). TEND_SYSTEMD_RUN, when set, is
// the -run pattern of the tests run inside instead of insideTests, to run
// one of them:
//
//	TEND_SYSTEMD_RUN='^TestInsideBackupRestore$' go test -run '^TestSystemd$' ./providers/systemd
func TestSystemd(t *testing.T) {
	run := insideTests
	if r := os.Getenv("TEND_SYSTEMD_RUN"); r != "" {
		run = r
	}
	systemdtest.RunTests(t, run)
}

func testServerMain() {
	port := os.Getenv("PORT")
	mux := http.NewServeMux()
	mux.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, os.Getenv("VERSION"))
	})
	mux.HandleFunc("/pid", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, os.Getpid())
	})
	mux.HandleFunc("/env", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, os.Getenv(r.URL.Query().Get("name")))
	})
	mux.HandleFunc("/args", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, strings.Join(os.Args[1:], " "))
	})
	mux.HandleFunc("/uid", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%d:%d", os.Getuid(), os.Getgid())
	})
	mux.HandleFunc("/read", func(w http.ResponseWriter, r *http.Request) {
		b, err := os.ReadFile(r.URL.Query().Get("path"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusForbidden)
			return
		}
		w.Write(b)
	})
	mux.HandleFunc("/write", func(w http.ResponseWriter, r *http.Request) {
		if err := os.WriteFile(r.URL.Query().Get("path"), []byte("written"), 0o600); err != nil {
			http.Error(w, err.Error(), http.StatusForbidden)
			return
		}
		fmt.Fprint(w, "ok")
	})
	mux.HandleFunc("/cwd", func(w http.ResponseWriter, r *http.Request) {
		wd, _ := os.Getwd()
		fmt.Fprint(w, wd)
	})
	mux.HandleFunc("/burn", func(w http.ResponseWriter, r *http.Request) {
		ms, _ := strconv.Atoi(r.URL.Query().Get("ms"))
		end := time.Now().Add(time.Duration(ms) * time.Millisecond)
		n := 0
		for time.Now().Before(end) {
			n++
		}
		// Some memory too.
		buf := make([]byte, 8<<20)
		for i := range buf {
			buf[i] = byte(i)
		}
		fmt.Fprint(w, n+int(buf[len(buf)-1]))
	})
	fmt.Printf("listening on port %s\n", port)
	fmt.Fprintln(os.Stderr, "a line on stderr")
	err := http.ListenAndServe("127.0.0.1:"+port, mux)
	fmt.Fprintln(os.Stderr, "serve:", err)
	os.Exit(1)
}

// testExecMain prints what a task sees and exits with $EXEC_EXIT.
func testExecMain() {
	cwd, _ := os.Getwd()
	cfg, _ := os.ReadFile("config.yaml")
	fmt.Printf("GREETING=%s\n", os.Getenv("GREETING"))
	fmt.Printf("ARGS=%s\n", strings.Join(os.Args[2:], " "))
	fmt.Printf("CWD=%s\n", cwd)
	fmt.Printf("CONFIG=%s\n", cfg)
	fmt.Printf("VOLUME=%s\n", os.Getenv("TEND_VOLUME_DATA"))
	fmt.Fprintln(os.Stderr, "exec stderr")
	code, _ := strconv.Atoi(os.Getenv("EXEC_EXIT"))
	os.Exit(code)
}

// ---- helpers of the tests inside the systemd container ----

// inside skips a test that needs systemd outside the container.
func inside(t *testing.T) {
	t.Helper()
	systemdtest.SkipUnlessInside(t)
}

func testExe(t *testing.T) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return exe
}

// newTestProvider returns a provider whose state and artifact directories
// are the test's, owned by a managed-by unique to the test; every unit of
// it is stopped and removed when the test ends.
func newTestProvider(t *testing.T, keep int) (*Provider, string) {
	t.Helper()
	managedBy := "test-" + strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name())) + "-" + strconv.Itoa(os.Getpid())
	dir := t.TempDir()
	p, err := New(&spec.Provider{Type: Type, Name: "test", Systemd: &spec.SystemdSettings{
		UnitDir: defaultUnitDir, ArtifactDir: filepath.Join(dir, "artifacts"), KeepArtifacts: keep,
	}}, providers.Env{StateDir: filepath.Join(dir, "state"), ManagedBy: managedBy})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		res := p.Observe(ctx, providers.ObserveRequest{ManagedBy: managedBy})
		for _, inst := range res.Instances {
			if r := p.StopReplica(ctx, providers.StopRequest{Instance: inst, Grace: time.Second}); r.Err != nil {
				t.Errorf("cleanup: StopReplica %s/%d: %v", inst.Server, inst.Replica, r.Err)
			}
		}
		p.Close()
	})
	return p, managedBy
}

// testServer is a server of the test binary answering /health with its
// version.
func testServer(t *testing.T, name, version string, port int) *spec.Server {
	t.Helper()
	return &spec.Server{
		Name: name, Provider: "systemd.test", Version: version,
		Command:  []spec.Value{spec.Plain(testExe(t))},
		Replicas: 1,
		Ports:    []spec.Port{{Name: "http", Number: port, Protocol: "tcp"}},
		Env: map[string]spec.Value{
			"SYSTEMD_TEST_SERVER": spec.Plain("1"),
			"VERSION":             spec.Plain(version),
		},
	}
}

func desiredOf(s *spec.Server, managedBy string) *providers.Desired {
	return &providers.Desired{Server: s, SpecHash: spec.RuntimeHash(s.Fields()), Revision: "r1", ManagedBy: managedBy}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func start(t *testing.T, p *Provider, d *providers.Desired, replica int) providers.Instance {
	t.Helper()
	res := p.StartReplica(ctxT(t), providers.StartRequest{Desired: d, Replica: replica})
	if res.Err != nil {
		t.Fatalf("StartReplica %s/%d: %v", d.Server.Name, replica, res.Err)
	}
	return res.Instance
}

func httpGet(port int, path string) (string, error) {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d%s", port, path))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	if resp.StatusCode != http.StatusOK {
		return b.String(), fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return b.String(), nil
}

// eventually retries f until it returns nil, for at most d.
func eventually(t *testing.T, d time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %v", d, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func waitHealth(t *testing.T, port int, version string) {
	t.Helper()
	eventually(t, 20*time.Second, func() error {
		got, err := httpGet(port, "/health")
		if err != nil {
			return err
		}
		if got != version {
			return fmt.Errorf("/health on %d answers %q, want %q", port, got, version)
		}
		return nil
	})
}

func observeOne(t *testing.T, p *Provider, managedBy, server string, replica int) providers.Instance {
	t.Helper()
	res := p.Observe(ctxT(t), providers.ObserveRequest{ManagedBy: managedBy})
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	for _, inst := range res.Instances {
		if inst.Server == server && inst.Replica == replica {
			return inst
		}
	}
	t.Fatalf("Observe does not list %s/%d", server, replica)
	return providers.Instance{}
}

func freePorts(t *testing.T, n int) int { return testports.Consecutive(t, n) }
