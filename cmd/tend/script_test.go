package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"flag"
	"github.com/tendhq/tend/providers"
	"github.com/tendhq/tend/providers/process"
	"github.com/tendhq/tend/reconcile/state"
	"github.com/tendhq/tend/spec"
	"os"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

var updateScripts = flag.Bool("update", false, "rewrite the expected output in testscripts")

// TestMain lets testscripts run the real tend binary: the test binary itself,
// re-executed as "tend".
func TestMain(m *testing.M) {
	process.MaybeSupervise()
	testscript.Main(stopPostgresAfter{m}, map[string]func(){
		"tend": func() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) },
	})
}

var (
	notesOnce sync.Once
	notesDir  string
	notesErr  error
)

// buildNotes builds the mcp-notes releases the scripts deploy: 1.0.0,
// 1.1.0, 1.2.0 that crashes at start, and the tool-set releases of the
// contract script. Built once per test run.
func buildNotes() (string, error) {
	notesOnce.Do(func() {
		notesDir, notesErr = os.MkdirTemp("", "tend-mcp-notes-")
		if notesErr != nil {
			return
		}
		for _, b := range []struct{ version, fault, toolset string }{
			{"1.0.0", "", ""}, {"1.1.0", "", ""}, {"1.2.0", "crash", ""},
			// For the contract checks: a compatible minor release, a minor
			// and a major release that break clients, and a release that
			// answers /health but not MCP.
			{"1.3.0", "", "v2-additive"}, {"1.4.0", "", "v2-breaking"}, {"2.0.0", "", "v2-breaking"}, {"2.0.1", "no-mcp", "v2-breaking"},
		} {
			ld := "-X main.version=" + b.version
			if b.fault != "" {
				ld += " -X main.fault=" + b.fault
			}
			if b.toolset != "" {
				ld += " -X main.toolset=" + b.toolset
			}
			cmd := exec.Command("go", "build", "-ldflags", ld, "-o", filepath.Join(notesDir, "mcp-notes-"+b.version), "../../examples/mcp-notes")
			if out, err := cmd.CombinedOutput(); err != nil {
				notesErr = fmt.Errorf("building mcp-notes %s: %v\n%s", b.version, err, out)
				return
			}
		}
	})
	return notesDir, notesErr
}

// freePorts finds n consecutive free loopback ports.
func freePorts(n int) (int, error) {
	for try := 0; try < 50; try++ {
		base := 20000 + rand.IntN(30000)
		ok := true
		for i := 0; i < n && ok; i++ {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", base+i))
			if err != nil {
				ok = false
				continue
			}
			l.Close()
		}
		if ok {
			return base, nil
		}
	}
	return 0, fmt.Errorf("no %d consecutive free ports", n)
}

// TestScript runs testdata/script/*.txtar: each is a small state repository
// and the commands a person would type, with their exit codes and output.
func TestScript(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		UpdateScripts:       *updateScripts,
		RequireExplicitExec: true,
		Condition: func(cond string) (bool, error) {
			if cond == "postgres" {
				return postgresCondition()
			}
			return false, fmt.Errorf("unknown condition %q", cond)
		},
		Setup: func(env *testscript.Env) error {
			// The machine's settings must not leak into a script.
			for _, k := range []string{"TEND_ENV", "TEND_SECRETS_DIR", "NO_COLOR", "TEND_MANAGED_BY"} {
				env.Setenv(k, "")
			}
			env.Setenv("TEND_STATE_DIR", filepath.Join(env.WorkDir, ".state"))
			port, err := freePorts(4)
			if err != nil {
				return err
			}
			env.Setenv("PORT_BASE", strconv.Itoa(port))
			env.Setenv("PORT_BASE_1", strconv.Itoa(port+1))
			env.Setenv("PORT_BASE_2", strconv.Itoa(port+2))
			env.Setenv("PORT_BASE_3", strconv.Itoa(port+3))
			// Every script's replicas are stopped when it ends, pass or fail;
			// so are those whose state directory a script removed, by their
			// supervisors (whose working directory is under $WORK).
			env.Defer(func() {
				stopAll(filepath.Join(env.WorkDir, ".state"))
				// Scripts that run several tends give each a NAME.state.
				others, _ := filepath.Glob(filepath.Join(env.WorkDir, "*.state"))
				for _, dir := range others {
					stopAll(dir)
				}
				termProcs("__tend-supervise", env.WorkDir, 15*time.Second)
			})
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			// notes-bin sets $NOTES_BIN to the folder of mcp-notes builds.
			"notes-bin": func(ts *testscript.TestScript, neg bool, args []string) {
				dir, err := buildNotes()
				ts.Check(err)
				ts.Setenv("NOTES_BIN", dir)
			},
			// git-serve NAME: serve the bare repository $WORK/NAME.git over
			// git's smart HTTP (git http-backend) on loopback, creating it on
			// first use; sets $GIT_URL. Run again after git-stop, it serves
			// on the same address.
			"git-serve": cmdGitServe,
			// git-stop: stop serving (the remote becomes unreachable).
			"git-stop": cmdGitStop,
			// pgp-key VAR PUBFILE: a new OpenPGP key, private in $VAR.
			"pgp-key": cmdPGPKey,
			// git-verify-signed REPO REF PUBFILE: REF's commit is signed by the key.
			"git-verify-signed": cmdGitVerifySigned,
			// wait-for URL SUBSTRING [TIMEOUT]: poll GET URL until its body
			// contains SUBSTRING (with $TEND_API_TOKEN as bearer token).
			"wait-for": cmdWaitFor,
			// webhook URL SECRET BODY: POST BODY signed like /hooks/generic.
			"webhook": cmdWebhook,
			// pg-store [-wrong-password]: a new, empty PostgreSQL database
			// (internal/pgtest) as $TEND_STORE, and its password as
			// $PG_PASSWORD; with -wrong-password, $TEND_STORE has the
			// password "wrong-$PG_PASSWORD" instead. Skips without
			// PostgreSQL (fails with TEND_REQUIRE_POSTGRES=1).
			"pg-store": cmdPGStore,
			// wait-for-file FILE SUBSTRING: wait up to 30s for FILE to contain SUBSTRING.
			"wait-for-file": func(ts *testscript.TestScript, neg bool, args []string) {
				for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
					if b, err := os.ReadFile(ts.MkAbs(args[0])); err == nil && strings.Contains(string(b), args[1]) {
						return
					}
				}
				ts.Fatalf("%s did not get %q", args[0], args[1])
			},
			// receiver: a local HTTP server recording notifications.
			"receiver": cmdReceiver,
			// mcp-call URL TOOL [ARGS-JSON]: call a tool over MCP; its
			// structured result goes to stdout.
			"mcp-call": cmdMCPCall,
			// load start [-rate N] [-for D] [-path P] PORT [COUNT] | load stop:
			// HTTP load at the replicas on 127.0.0.1 (see cmdLoad).
			"load": cmdLoad,
			// notes-clear URL: delete every note of an mcp-notes server.
			"notes-clear": cmdNotesClear,
			// flip-byte GLOB: flip one byte of every matching file.
			"flip-byte": cmdFlipByte,
			// scribble FILE OFFSET [LEN]: write LEN (4096) random bytes at OFFSET.
			"scribble": cmdScribble,
			// wait-procs SUBSTRING N: wait until procs SUBSTRING N holds.
			"wait-procs": cmdWaitProcs,
			// term-procs SUBSTRING: SIGTERM what procs counts, wait until gone.
			"term-procs": cmdTermProcs,
			// promoted-after TO_STATE FROM_STATE SERVER VERSION SOAK: the
			// first revision of SERVER at VERSION in the store of TO_STATE
			// started at least SOAK after the first verified one in
			// FROM_STATE finished.
			"promoted-after": cmdPromotedAfter,
			// sleep DURATION
			"sleep": func(ts *testscript.TestScript, neg bool, args []string) {
				d, err := time.ParseDuration(args[0])
				ts.Check(err)
				time.Sleep(d)
			},
			// procs SUBSTRING N: exactly N live processes of this script
			// (working directory inside $WORK) have SUBSTRING in their
			// command line. Scripts run in parallel; this keeps them apart.
			"procs": func(ts *testscript.TestScript, neg bool, args []string) {
				want, err := strconv.Atoi(args[1])
				ts.Check(err)
				got := countProcs(args[0], ts.Getenv("WORK"))
				if (got == want) == neg {
					ts.Fatalf("%d processes match %q, want %d", got, args[0], want)
				}
			},
			// kill-proc SUBSTRING: SIGKILL one of the processes procs
			// counts, as a crash would end it.
			"kill-proc": func(ts *testscript.TestScript, neg bool, args []string) {
				pids := findProcs(args[0], ts.Getenv("WORK"))
				if len(pids) == 0 {
					ts.Fatalf("no process matches %q", args[0])
				}
				ts.Check(syscall.Kill(pids[0], syscall.SIGKILL))
			},
			// http-serve DIR: serve the files of DIR over HTTP on loopback
			// until the script ends; sets $HTTP_URL.
			"http-serve": func(ts *testscript.TestScript, neg bool, args []string) {
				if len(args) != 1 {
					ts.Fatalf("usage: http-serve DIR")
				}
				srv := httptest.NewServer(http.FileServer(http.Dir(ts.MkAbs(args[0]))))
				ts.Defer(srv.Close)
				ts.Setenv("HTTP_URL", srv.URL)
			},
			// http-get URL [substring]: GET a URL and check the body.
			"http-get": func(ts *testscript.TestScript, neg bool, args []string) {
				resp, err := http.Get(args[0])
				if err == nil {
					defer resp.Body.Close()
					body, _ := io.ReadAll(resp.Body)
					if resp.StatusCode != 200 {
						err = fmt.Errorf("status %d: %s", resp.StatusCode, body)
					} else if len(args) > 1 && !strings.Contains(string(body), args[1]) {
						err = fmt.Errorf("body %q does not contain %q", body, args[1])
					}
				}
				if neg {
					if err == nil {
						ts.Fatalf("GET %s succeeded", args[0])
					}
					return
				}
				ts.Check(err)
			},
		},
	})
}

// stopAll stops every replica a script left running, through the process
// provider itself, so no process outlives the tests.
func stopAll(stateDir string) { _ = stopReplicas(stateDir, providers.DefaultManagedBy) }

// stopReplicas stops every replica of managedBy that the process provider
// "local" runs from stateDir (what scripts and benchmarks start).
func stopReplicas(stateDir, managedBy string) error {
	p, err := process.New(&spec.Provider{Type: "process", Name: "local", Process: &spec.ProcessSettings{StopTimeout: 2 * time.Second, Host: "127.0.0.1"}},
		providers.Env{StateDir: stateDir, ManagedBy: managedBy})
	if err != nil {
		return err
	}
	ctx := context.Background()
	for _, in := range p.Observe(ctx, providers.ObserveRequest{ManagedBy: managedBy}).Instances {
		if r := p.StopReplica(ctx, providers.StopRequest{Instance: in, Grace: 2 * time.Second}); r.Err != nil {
			err = r.Err
		}
	}
	return err
}

// countProcs counts live (not zombie) processes whose command line contains
// sub and whose working directory is inside dir.
func countProcs(sub, dir string) int { return len(findProcs(sub, dir)) }

// findProcs lists the pids of those processes.
func findProcs(sub, dir string) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmd, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !strings.Contains(string(cmd), sub) {
			continue
		}
		if cwd, err := os.Readlink(filepath.Join("/proc", e.Name(), "cwd")); err != nil || !strings.HasPrefix(cwd, dir+"/") {
			continue
		}
		if st, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat")); err == nil {
			if i := strings.LastIndexByte(string(st), ')'); i > 0 && i+2 < len(st) && st[i+2] == 'Z' {
				continue
			}
		}
		pids = append(pids, pid)
	}
	return pids
}

func cmdPromotedAfter(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 5 {
		ts.Fatalf("usage: promoted-after TO_STATE FROM_STATE SERVER VERSION SOAK")
	}
	soak, err := time.ParseDuration(args[4])
	ts.Check(err)
	first := func(dir string, verified bool) time.Time {
		st, err := state.OpenReadOnly(filepath.Join(ts.MkAbs(dir), "state.db"))
		ts.Check(err)
		defer st.Close()
		hist, err := st.History(args[2], 0)
		ts.Check(err)
		var at time.Time
		for _, r := range hist { // newest first: the last match is the first
			if r.Version != args[3] || verified && r.Outcome != state.OutcomeVerified {
				continue
			}
			at = r.StartedAt
			if verified {
				at = r.FinishedAt
			}
		}
		if at.IsZero() {
			ts.Fatalf("%s records no revision of %s at %s", dir, args[2], args[3])
		}
		return at
	}
	verified, applied := first(args[1], true), first(args[0], false)
	if gap := applied.Sub(verified); (gap >= soak) == neg {
		ts.Fatalf("%s %s started in %s %s after it was verified in %s (soak %s)", args[2], args[3], args[0], gap, args[1], soak)
	}
}
