package process

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tendhq/tend/internal/testports"
	"github.com/tendhq/tend/providers"
	"github.com/tendhq/tend/spec"
)

// The test binary is its own workload: run as a supervisor, as a small
// HTTP server (PROCESS_TEST_SERVER=1), as a one-off task (__test-exec) or
// as a process tend did not start (__test-sleep).
func TestMain(m *testing.M) {
	MaybeSupervise()
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "__test-exec":
			testExecMain()
		case "__test-sleep":
			time.Sleep(time.Hour)
			os.Exit(0)
		}
	}
	if os.Getenv("PROCESS_TEST_SERVER") == "1" {
		testServerMain()
		return
	}
	os.Exit(m.Run())
}

func testServerMain() {
	port := os.Getenv("PORT")
	if s := os.Getenv("CRASH_AFTER"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bad CRASH_AFTER:", err)
			os.Exit(2)
		}
		if d <= 0 {
			fmt.Println("crashing at once")
			os.Exit(3)
		}
		time.AfterFunc(d, func() {
			fmt.Println("crashing")
			os.Exit(3)
		})
	}
	if os.Getenv("IGNORE_TERM") == "1" {
		signal.Ignore(syscall.SIGTERM)
	}
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

// ---- helpers ----

const testManagedBy = "tend-test"

func testExe(t *testing.T) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return exe
}

func newTestProvider(t *testing.T, root string) *Provider {
	t.Helper()
	p, err := New(&spec.Provider{Type: "process", Name: "test", Process: &spec.ProcessSettings{
		WorkDir: root, StopTimeout: 2 * time.Second,
	}}, providers.Env{ManagedBy: testManagedBy})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func testDesired(t *testing.T, name string, port int, hash string, env map[string]spec.Value) *providers.Desired {
	t.Helper()
	e := map[string]spec.Value{
		"PROCESS_TEST_SERVER": spec.Plain("1"),
		"VERSION":             spec.Plain("1.0.0"),
	}
	for k, v := range env {
		e[k] = v
	}
	return &providers.Desired{
		Server: &spec.Server{
			Name:     name,
			Provider: "process.test",
			Version:  e["VERSION"].Reveal(),
			Command:  []spec.Value{spec.Plain(testExe(t))},
			Replicas: 1,
			Ports:    []spec.Port{{Name: "http", Number: port, Protocol: "tcp"}},
			Env:      e,
		},
		SpecHash:  hash,
		Revision:  "rev-" + hash,
		ManagedBy: testManagedBy,
	}
}

// startTest starts a replica and registers its cleanup: StopReplica, then
// SIGKILL for whatever of it would be left.
func startTest(t *testing.T, p *Provider, d *providers.Desired, replica int) providers.Instance {
	t.Helper()
	dir, err := p.instanceDir(testManagedBy, d.Server.Name, replica)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cleanupInstance(t, p, dir, d.Server.Name, replica) })
	res := p.StartReplica(context.Background(), providers.StartRequest{Desired: d, Replica: replica})
	if res.Err != nil {
		t.Fatalf("StartReplica %s/%d: %v", d.Server.Name, replica, res.Err)
	}
	return res.Instance
}

func cleanupInstance(t *testing.T, p *Provider, dir, server string, replica int) {
	var pids []int
	collect := func() {
		f := readInstance(dir)
		pids = append(pids, f.supPid, f.st.ChildPID)
	}
	collect()
	res := p.StopReplica(context.Background(), providers.StopRequest{
		Instance: providers.Instance{Identity: providers.Identity{ManagedBy: testManagedBy, Server: server, Replica: replica}},
		Grace:    time.Second,
	})
	if res.Err != nil {
		t.Errorf("cleanup: StopReplica %s/%d: %v", server, replica, res.Err)
	}
	killLeftovers(t, pids...)
}

// killLeftovers kills processes of this test binary that are still there.
func killLeftovers(t *testing.T, pids ...int) {
	exe, _ := os.Executable()
	for _, pid := range pids {
		if pid <= 0 {
			continue
		}
		if args := readCmdline(pid); len(args) > 0 && args[0] == exe {
			t.Errorf("pid %d (%v) was left running; killing it", pid, args)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

func httpGet(port int, path string) (string, error) {
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d%s", port, path))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
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
		time.Sleep(50 * time.Millisecond)
	}
}

func observe(t *testing.T, p *Provider) []providers.Instance {
	t.Helper()
	res := p.Observe(context.Background(), providers.ObserveRequest{ManagedBy: testManagedBy})
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	return res.Instances
}

func find(insts []providers.Instance, server string, replica int) *providers.Instance {
	for i := range insts {
		if insts[i].Server == server && insts[i].Replica == replica {
			return &insts[i]
		}
	}
	return nil
}

func observeOne(t *testing.T, p *Provider, server string, replica int) providers.Instance {
	t.Helper()
	inst := find(observe(t, p), server, replica)
	if inst == nil {
		t.Fatalf("Observe does not list %s/%d", server, replica)
	}
	return *inst
}

func pidGone(pid int) bool {
	_, ok := live(pid)
	return !ok
}

func statusOf(t *testing.T, p *Provider, server string, replica int) status {
	t.Helper()
	dir, _ := p.instanceDir(testManagedBy, server, replica)
	return readInstance(dir).st
}

func tempRoot(t *testing.T) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "root")
}

func freePorts(t *testing.T, n int) int { return testports.Consecutive(t, n) }
