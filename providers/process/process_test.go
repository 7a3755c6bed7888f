package process

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tendhq/tend/providers"
	"github.com/tendhq/tend/providers/internal/hostfs"
	"github.com/tendhq/tend/providers/process/supervisor"
	"github.com/tendhq/tend/spec"
)

func TestRegister(t *testing.T) {
	r := providers.NewRegistry()
	Register(r)
	cfg := &spec.Config{Providers: map[string]*spec.Provider{}}
	pr, err := r.Get(cfg, spec.DefaultProcessProvider, providers.Env{StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if pr.Type() != "process" {
		t.Fatalf("type %q", pr.Type())
	}
	p := pr.(*Provider)
	if want := "providers/process.default"; !strings.HasSuffix(p.Root(), want) {
		t.Errorf("root %s, want .../%s", p.Root(), want)
	}
	if _, err := New(&spec.Provider{Type: "process", Name: "x"}, providers.Env{}); err == nil {
		t.Error("New without work_dir and state dir: no error")
	}
}

func TestStartObserveStop(t *testing.T) {
	t.Parallel()
	root := tempRoot(t)
	p := newTestProvider(t, root)
	port := freePorts(t, 2)
	d := testDesired(t, "web", port, "h1", nil)

	for i := range 2 {
		inst := startTest(t, p, d, i)
		if inst.State != providers.StateRunning && inst.State != providers.StateStarting {
			t.Fatalf("replica %d started in state %s (%s)", i, inst.State, inst.Message)
		}
	}
	for i := range 2 {
		eventually(t, 5*time.Second, func() error {
			got, err := httpGet(port+i, "/health")
			if err == nil && got != "1.0.0" {
				err = fmt.Errorf("replica %d answers %q", i, got)
			}
			return err
		})
	}

	check := func(p *Provider) {
		t.Helper()
		insts := observe(t, p)
		if len(insts) != 2 {
			t.Fatalf("Observe: %d instances, want 2: %+v", len(insts), insts)
		}
		for i, inst := range insts {
			want := d.Identity(i)
			if inst.Identity != want {
				t.Errorf("replica %d identity %+v, want %+v", i, inst.Identity, want)
			}
			if inst.State != providers.StateRunning {
				t.Errorf("replica %d state %s (%s)", i, inst.State, inst.Message)
			}
			if inst.Ports["http"] != port+i || len(inst.Ports) != 1 {
				t.Errorf("replica %d ports %v, want http=%d", i, inst.Ports, port+i)
			}
			if inst.Host != "127.0.0.1" || inst.Provider != "process.test" {
				t.Errorf("replica %d host %q provider %q", i, inst.Host, inst.Provider)
			}
			if len(inst.Drift) != 0 {
				t.Errorf("replica %d drift %v", i, inst.Drift)
			}
			if inst.ID == "" || inst.StartedAt.IsZero() {
				t.Errorf("replica %d: id %q started %v", i, inst.ID, inst.StartedAt)
			}
		}
	}
	eventually(t, 3*time.Second, func() error {
		for _, inst := range observe(t, p) {
			if inst.State != providers.StateRunning {
				return fmt.Errorf("%s/%d is %s", inst.Server, inst.Replica, inst.State)
			}
		}
		return nil
	})
	check(p)
	// After tend restarts: a new provider value finds them from the files.
	check(newTestProvider(t, root))

	// The supervisor's command line is what Observe recognises.
	dir, _ := p.instanceDir(testManagedBy, "web", 1)
	f := readInstance(dir)
	if args := readCmdline(f.supPid); len(args) != 3 || args[1] != superviseArg || args[2] != dir {
		t.Fatalf("supervisor cmdline %q", args)
	}
	if st, _ := readStat(f.supPid); st.PGID != f.supPid {
		t.Errorf("supervisor is not in a session/group of its own: pgid %d", st.PGID)
	}
	if st, _ := readStat(f.st.ChildPID); st.PGID != f.st.ChildPID || st.PPID != f.supPid {
		t.Errorf("child pgid %d ppid %d, want its own group under the supervisor %d", st.PGID, st.PPID, f.supPid)
	}

	// Stop replica 1 with a new provider value: the processes go, the
	// directory goes.
	p2 := newTestProvider(t, root)
	inst := observeOne(t, p2, "web", 1)
	if res := p2.StopReplica(context.Background(), providers.StopRequest{Instance: inst, Grace: time.Second}); res.Err != nil {
		t.Fatal(res.Err)
	}
	for _, pid := range []int{f.supPid, f.st.ChildPID} {
		if !pidGone(pid) {
			t.Errorf("pid %d still runs after StopReplica", pid)
		}
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("instance dir still there: %v", err)
	}
	if _, err := httpGet(port+1, "/health"); err == nil {
		t.Error("replica 1 still answers")
	}
	insts := observe(t, p)
	if len(insts) != 1 || insts[0].Replica != 0 {
		t.Fatalf("after stop, Observe: %+v", insts)
	}
	// Stopping what is gone is not an error.
	if res := p.StopReplica(context.Background(), providers.StopRequest{Instance: inst}); res.Err != nil {
		t.Fatal(res.Err)
	}
}

func TestReplaceInPlace(t *testing.T) {
	t.Parallel()
	p := newTestProvider(t, tempRoot(t))
	port := freePorts(t, 1)
	startTest(t, p, testDesired(t, "api", port, "h1", nil), 0)
	old := statusOf(t, p, "api", 0)

	d2 := testDesired(t, "api", port, "h2", map[string]spec.Value{"VERSION": spec.Plain("2.0.0")})
	inst := startTest(t, p, d2, 0)
	if inst.SpecHash != "h2" || inst.Version != "2.0.0" || inst.Ports["http"] != port {
		t.Fatalf("replaced instance %+v", inst)
	}
	eventually(t, 5*time.Second, func() error {
		got, err := httpGet(port, "/health")
		if err == nil && got != "2.0.0" {
			err = fmt.Errorf("answers %q", got)
		}
		return err
	})
	for _, pid := range []int{old.SupervisorPID, old.ChildPID} {
		if !pidGone(pid) {
			t.Errorf("old pid %d still runs", pid)
		}
	}
	insts := observe(t, p)
	if len(insts) != 1 || insts[0].SpecHash != "h2" || insts[0].Revision != "rev-h2" {
		t.Fatalf("Observe after replace: %+v", insts)
	}
}

func TestRestartAfterKill(t *testing.T) {
	t.Parallel()
	p := newTestProvider(t, tempRoot(t))
	port := freePorts(t, 1)
	startTest(t, p, testDesired(t, "k", port, "h1", nil), 0)
	eventually(t, 5*time.Second, func() error { _, err := httpGet(port, "/health"); return err })
	before := statusOf(t, p, "k", 0)
	if err := syscall.Kill(before.ChildPID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	eventually(t, 8*time.Second, func() error {
		inst := observeOne(t, p, "k", 0)
		st := statusOf(t, p, "k", 0)
		if inst.Restarts < 1 || inst.State != providers.StateRunning || st.ChildPID == before.ChildPID {
			return fmt.Errorf("state %s restarts %d pid %d (%s)", inst.State, inst.Restarts, st.ChildPID, inst.Message)
		}
		return nil
	})
	eventually(t, 5*time.Second, func() error { _, err := httpGet(port, "/health"); return err })
	inst := observeOne(t, p, "k", 0)
	if !strings.Contains(inst.Message, "SIGKILL") {
		t.Errorf("message %q does not say how it ended", inst.Message)
	}
}

func TestCrashingChild(t *testing.T) {
	t.Parallel()
	p := newTestProvider(t, tempRoot(t))
	port := freePorts(t, 1)
	d := testDesired(t, "crash", port, "h1", map[string]spec.Value{"CRASH_AFTER": spec.Plain("0s")})
	inst := startTest(t, p, d, 0)
	if inst.State != providers.StateExited && inst.State != providers.StateCrashing {
		t.Fatalf("started in state %s, want exited (%s)", inst.State, inst.Message)
	}
	if inst.ExitCode != 3 {
		t.Errorf("exit code %d, want 3", inst.ExitCode)
	}
	eventually(t, 6*time.Second, func() error {
		inst := observeOne(t, p, "crash", 0)
		if inst.State != providers.StateCrashing || inst.ExitCode != 3 {
			return fmt.Errorf("state %s exit %d (%s)", inst.State, inst.ExitCode, inst.Message)
		}
		return nil
	})
	inst = observeOne(t, p, "crash", 0)
	if !strings.Contains(inst.Message, "exit code 3") || inst.Restarts < 2 {
		t.Errorf("message %q restarts %d", inst.Message, inst.Restarts)
	}
	logs, err := p.Logs(context.Background(), inst, 5)
	if err != nil || !bytes.Contains(logs, []byte("crashing at once")) {
		t.Errorf("logs %q, %v", logs, err)
	}
}

func TestDrift(t *testing.T) {
	t.Parallel()
	p := newTestProvider(t, tempRoot(t))
	port := freePorts(t, 1)
	d := testDesired(t, "drift", port, "h1", nil)
	d.Server.ConfigFiles = []*spec.ConfigFile{
		{Path: "config.yaml", Content: spec.Plain("workers: 4\n"), Mode: 0o640},
		{Path: "conf.d/token", Content: spec.Sensitive("tok-123"), Mode: 0o644},
	}
	startTest(t, p, d, 0)
	dir, _ := p.instanceDir(testManagedBy, "drift", 0)
	work := filepath.Join(dir, "work")
	for path, mode := range map[string]os.FileMode{"config.yaml": 0o640, "conf.d/token": 0o600} {
		fi, err := os.Stat(filepath.Join(work, path))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != mode {
			t.Errorf("%s mode %04o, want %04o", path, fi.Mode().Perm(), mode)
		}
	}
	if inst := observeOne(t, p, "drift", 0); len(inst.Drift) != 0 {
		t.Fatalf("drift before any change: %v", inst.Drift)
	}
	if err := os.WriteFile(filepath.Join(work, "config.yaml"), []byte("workers: 64\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	inst := observeOne(t, p, "drift", 0)
	if want := "config file config.yaml was changed by hand"; len(inst.Drift) != 1 || inst.Drift[0] != want {
		t.Fatalf("drift %q, want [%q]", inst.Drift, want)
	}
	if err := os.Remove(filepath.Join(work, "conf.d/token")); err != nil {
		t.Fatal(err)
	}
	envPath := filepath.Join(dir, "env")
	b, _ := os.ReadFile(envPath)
	if err := os.WriteFile(envPath, bytes.Replace(b, []byte("1.0.0"), []byte("6.6.6"), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	inst = observeOne(t, p, "drift", 0)
	got := strings.Join(inst.Drift, "\n")
	for _, want := range []string{"config file config.yaml was changed by hand", "config file conf.d/token was removed by hand", "the environment file was changed by hand"} {
		if !strings.Contains(got, want) {
			t.Errorf("drift %q lacks %q", inst.Drift, want)
		}
	}
	if inst.State != providers.StateRunning {
		t.Errorf("state %s", inst.State)
	}

	// Put back as tend wrote it, but readable by all: the mode is drift.
	os.WriteFile(filepath.Join(work, "config.yaml"), []byte("workers: 4\n"), 0o640)
	os.WriteFile(envPath, b, 0o600)
	os.MkdirAll(filepath.Join(work, "conf.d"), 0o755)
	os.WriteFile(filepath.Join(work, "conf.d/token"), []byte("tok-123"), 0o600)
	os.Chmod(filepath.Join(work, "conf.d/token"), 0o644)
	inst = observeOne(t, p, "drift", 0)
	if want := "config file conf.d/token has mode 0644, not 0600 as tend wrote it"; len(inst.Drift) != 1 || inst.Drift[0] != want {
		t.Errorf("drift %q, want [%q]", inst.Drift, want)
	}
}

func TestRefusals(t *testing.T) {
	t.Parallel()
	p := newTestProvider(t, tempRoot(t))
	port := freePorts(t, 1)

	d := testDesired(t, "abs", port, "h1", nil)
	d.Server.ConfigFiles = []*spec.ConfigFile{{Path: "/etc/app.yaml", Content: spec.Plain("x")}}
	res := p.StartReplica(context.Background(), providers.StartRequest{Desired: d})
	if res.Err == nil || !strings.Contains(res.Err.Error(), "writes config files into the replica's working directory") {
		t.Errorf("absolute config file: %v", res.Err)
	}

	d = testDesired(t, "nope", port, "h1", nil)
	d.Server.Command = []spec.Value{spec.Plain("no-such-program-tend-test")}
	res = p.StartReplica(context.Background(), providers.StartRequest{Desired: d})
	if res.Err == nil || !strings.Contains(res.Err.Error(), "not in PATH") {
		t.Errorf("unknown program: %v", res.Err)
	}
	if insts := observe(t, p); len(insts) != 0 {
		t.Errorf("a refused start left instances: %+v", insts)
	}
}

// An instance whose server is no longer desired is still observed (the
// engine prunes it); one whose supervisor died is "missing".
func TestOrphanAndMissing(t *testing.T) {
	t.Parallel()
	root := tempRoot(t)
	p := newTestProvider(t, root)
	port := freePorts(t, 2)
	startTest(t, p, testDesired(t, "orphan", port, "h1", nil), 0)
	startTest(t, p, testDesired(t, "victim", port+1, "h1", nil), 0)

	// Another tend (another managed-by) sees nothing of them.
	other := p.Observe(context.Background(), providers.ObserveRequest{ManagedBy: "someone-else"})
	if other.Err != nil || len(other.Instances) != 0 {
		t.Errorf("another managed-by observes %+v, %v", other.Instances, other.Err)
	}

	// A fresh provider that was never asked to run "orphan" observes it.
	inst := observeOne(t, newTestProvider(t, root), "orphan", 0)
	if inst.SpecHash != "h1" || inst.ManagedBy != testManagedBy {
		t.Errorf("orphan %+v", inst)
	}

	st := statusOf(t, p, "victim", 0)
	if err := syscall.Kill(st.SupervisorPID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	eventually(t, 3*time.Second, func() error {
		inst := observeOne(t, p, "victim", 0)
		if inst.State != providers.StateMissing {
			return fmt.Errorf("state %s", inst.State)
		}
		if !strings.Contains(inst.Message, "unsupervised") {
			return fmt.Errorf("message %q", inst.Message)
		}
		return nil
	})
	// StopReplica still finds and kills the orphaned child.
	if res := p.StopReplica(context.Background(), providers.StopRequest{Instance: observeOne(t, p, "victim", 0)}); res.Err != nil {
		t.Fatal(res.Err)
	}
	if !pidGone(st.ChildPID) {
		t.Errorf("the unsupervised child %d still runs", st.ChildPID)
	}
}

// Records that point at processes tend did not start (a reused pid) make
// the instance missing, and StopReplica does not signal them.
func TestForeignProcessUntouched(t *testing.T) {
	t.Parallel()
	p := newTestProvider(t, tempRoot(t))
	dir, _ := p.instanceDir(testManagedBy, "fake", 0)
	if err := os.MkdirAll(filepath.Join(dir, "work"), 0o700); err != nil {
		t.Fatal(err)
	}
	// As like one of ours as can be: the recorded command line, a group
	// of its own, running in the instance's work dir. Only its start time
	// (a reused pid) and its parent tell it apart.
	cmd := exec.Command(testExe(t), "__test-sleep")
	cmd.Dir = filepath.Join(dir, "work")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})

	rec := record{Identity: providers.Identity{ManagedBy: testManagedBy, Server: "fake", SpecHash: "x"}, Provider: "process.test"}
	ls := launchSpec{Identity: rec.Identity, Executable: testExe(t),
		Spec: supervisor.Spec{Argv: []string{testExe(t), "__test-sleep"}, EnvFile: "env", WorkDir: filepath.Join(dir, "work")}}
	st := status{SupervisorPID: pid, ChildPID: pid, ChildStartedAt: time.Now().Add(-time.Hour), State: "running"}
	for name, v := range map[string]any{identityFile: rec, specFile: ls, statusFile: st} {
		if err := hostfs.WriteJSON(filepath.Join(dir, name), v, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(dir, supPidFile), []byte(strconv.Itoa(pid)), 0o644)

	inst := observeOne(t, p, "fake", 0)
	if inst.State != providers.StateMissing {
		t.Errorf("fake instance state %s, want missing", inst.State)
	}
	if res := p.StopReplica(context.Background(), providers.StopRequest{Instance: inst, Grace: 100 * time.Millisecond}); res.Err != nil {
		t.Fatal(res.Err)
	}
	if pidGone(pid) {
		t.Fatal("StopReplica killed a process tend did not start")
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the fake instance's directory is still there: %v", err)
	}
}

func TestExec(t *testing.T) {
	t.Parallel()
	root := tempRoot(t)
	p := newTestProvider(t, root)
	port := freePorts(t, 2)
	d := testDesired(t, "task", port, "h1", map[string]spec.Value{
		"GREETING":  spec.Plain("hello from $(TEND_SERVER)"),
		"EXEC_EXIT": spec.Plain("7"),
	})
	d.Server.ConfigFiles = []*spec.ConfigFile{{Path: "config.yaml", Content: spec.Plain("cfg-content")}}
	d.Server.Volumes = []*spec.Volume{{Name: "data", Path: "/data"}}
	inst := startTest(t, p, d, 1)

	run := func(inst *providers.Instance) (string, string, providers.ExecResponse) {
		var out, errb bytes.Buffer
		res := p.Exec(context.Background(), providers.ExecRequest{
			Desired: d, Instance: inst,
			Command: []string{testExe(t), "__test-exec", "replica=$(TEND_REPLICA)", "port=$(PORT)"},
			Stdout:  &out, Stderr: &errb,
		})
		return out.String(), errb.String(), res
	}
	out, errOut, res := run(&inst)
	if res.Err != nil || res.ExitCode != 7 {
		t.Fatalf("Exec: code %d err %v\n%s%s", res.ExitCode, res.Err, out, errOut)
	}
	dir, _ := p.instanceDir(testManagedBy, "task", 1)
	for _, want := range []string{
		"GREETING=hello from task\n",
		fmt.Sprintf("ARGS=replica=1 port=%d\n", port+1),
		"CWD=" + filepath.Join(dir, "work") + "\n",
		"CONFIG=cfg-content\n",
		"VOLUME=" + filepath.Join(root, testManagedBy, "task", "volumes", "data-1") + "\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("Exec output lacks %q:\n%s", want, out)
		}
	}
	if errOut != "exec stderr\n" {
		t.Errorf("stderr %q", errOut)
	}

	// Without an instance: a fresh directory with the config files, gone
	// afterwards.
	out, _, res = run(nil)
	if res.Err != nil || res.ExitCode != 7 || !strings.Contains(out, "CONFIG=cfg-content") || !strings.Contains(out, "ARGS=replica=0") {
		t.Fatalf("Exec without instance: %d %v\n%s", res.ExitCode, res.Err, out)
	}
	if ents, _ := os.ReadDir(filepath.Join(root, ".tasks")); len(ents) != 0 {
		t.Errorf("task directories left: %v", ents)
	}

	res = p.Exec(context.Background(), providers.ExecRequest{Desired: d, Command: []string{"no-such-program-s3cr3t"}})
	if res.Err == nil || strings.Contains(res.Err.Error(), "s3cr3t") {
		t.Errorf("Exec of a missing program: %v", res.Err)
	}

	// A task that outlives its context is killed with its group.
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	t0 := time.Now()
	res = p.Exec(ctx, providers.ExecRequest{Desired: d, Command: []string{testExe(t), "__test-sleep"}})
	if res.Err == nil || res.ExitCode != 128+int(syscall.SIGKILL) || time.Since(t0) > 5*time.Second {
		t.Errorf("Exec past its deadline: code %d err %v after %v", res.ExitCode, res.Err, time.Since(t0))
	}
}

func TestLogsStatsVolumes(t *testing.T) {
	t.Parallel()
	root := tempRoot(t)
	p := newTestProvider(t, root)
	port := freePorts(t, 2)
	d := testDesired(t, "data", port, "h1", nil)
	d.Server.Volumes = []*spec.Volume{{Name: "data", Path: "/var/lib/data"}}
	d.Server.Resources = &spec.Resources{MemoryBytes: 1 << 30}
	inst0 := startTest(t, p, d, 0)
	inst1 := startTest(t, p, d, 1)

	eventually(t, 5*time.Second, func() error {
		logs, err := p.Logs(context.Background(), inst0, 10)
		if err != nil {
			return err
		}
		want := fmt.Sprintf("==> stdout <==\nlistening on port %d\n\n==> stderr <==\na line on stderr\n", port)
		if string(logs) != want {
			return fmt.Errorf("logs %q, want %q", logs, want)
		}
		return nil
	})

	stats, err := p.Stats(context.Background(), inst0)
	if err != nil {
		t.Fatal(err)
	}
	if stats.MemoryBytes <= 0 || stats.MemoryPercent <= 0 || stats.CPUPercent < 0 {
		t.Errorf("stats %+v", stats)
	}
	if !stats.HasThreads || stats.Threads < 1 || !stats.HasConnections || stats.Connections < 0 {
		t.Errorf("stats %+v, want threads (at least 1) and connections known", stats)
	}

	vol0 := filepath.Join(root, testManagedBy, "data", "volumes", "data-0")
	got, err := httpGet(port, "/env?name=TEND_VOLUME_DATA")
	if err != nil || got != vol0 {
		t.Fatalf("TEND_VOLUME_DATA %q, %v; want %s", got, err, vol0)
	}
	os.MkdirAll(filepath.Join(vol0, "sub"), 0o755)
	os.WriteFile(filepath.Join(vol0, "sub", "a.txt"), []byte("alpha"), 0o640)
	os.Symlink("sub/a.txt", filepath.Join(vol0, "link"))
	var tarball bytes.Buffer
	if err := p.CopyOut(context.Background(), inst0, "/var/lib/data", &tarball); err != nil {
		t.Fatal(err)
	}
	vol1 := filepath.Join(root, testManagedBy, "data", "volumes", "data-1")
	os.WriteFile(filepath.Join(vol1, "stale"), []byte("old"), 0o600)
	if err := p.CopyIn(context.Background(), inst1, "/var/lib/data", bytes.NewReader(tarball.Bytes())); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(vol1, "link")); err != nil || string(b) != "alpha" {
		t.Errorf("restored link: %q, %v", b, err)
	}
	if fi, err := os.Stat(filepath.Join(vol1, "sub", "a.txt")); err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("restored file: %v %v", fi, err)
	}
	if _, err := os.Stat(filepath.Join(vol1, "stale")); !os.IsNotExist(err) {
		t.Errorf("CopyIn kept what the volume had: %v", err)
	}
	if err := p.CopyOut(context.Background(), inst0, "/elsewhere", &bytes.Buffer{}); err == nil {
		t.Error("CopyOut of a path that is no volume: no error")
	}

	// Volumes outlive their replica.
	if res := p.StopReplica(context.Background(), providers.StopRequest{Instance: inst1}); res.Err != nil {
		t.Fatal(res.Err)
	}
	if _, err := os.Stat(filepath.Join(vol1, "sub", "a.txt")); err != nil {
		t.Errorf("the volume went with its replica: %v", err)
	}
}

// TestStatsConnections opens connections to a replica and reads them back
// from Stats: exactly those, as the replica holds nothing else open.
func TestStatsConnections(t *testing.T) {
	t.Parallel()
	p := newTestProvider(t, tempRoot(t))
	port := freePorts(t, 1)
	inst := startTest(t, p, testDesired(t, "conns", port, "h1", nil), 0)

	const n = 3
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	// The first connection waits for the replica to listen.
	eventually(t, 10*time.Second, func() error {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return err
		}
		conns = append(conns, c)
		return nil
	})
	for len(conns) < n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	// The replica accepts them in its own time.
	eventually(t, 10*time.Second, func() error {
		st, err := p.Stats(context.Background(), inst)
		if err != nil {
			return err
		}
		if !st.HasConnections || st.Connections != n {
			return fmt.Errorf("stats %+v, want %d connections", st, n)
		}
		if !st.HasThreads || st.Threads < 1 {
			return fmt.Errorf("stats %+v, want at least 1 thread", st)
		}
		return nil
	})

	// Closed connections are gone from the count.
	for _, c := range conns {
		c.Close()
	}
	eventually(t, 10*time.Second, func() error {
		st, err := p.Stats(context.Background(), inst)
		if err != nil {
			return err
		}
		if !st.HasConnections || st.Connections != 0 {
			return fmt.Errorf("stats %+v after closing every connection, want 0 connections", st)
		}
		return nil
	})
}

func TestSecrets(t *testing.T) {
	t.Parallel()
	p := newTestProvider(t, tempRoot(t))
	port := freePorts(t, 1)
	const envSecret = "env-s3cr3t-4711"
	const argSecret = "arg-s3cr3t-0815"
	const fileSecret = "file-s3cr3t-2342"
	d := testDesired(t, "vault", port, "h1", map[string]spec.Value{
		"API_TOKEN": spec.Sensitive(envSecret),
	})
	d.Server.Args = []spec.Value{spec.Sensitive("--token=" + argSecret), spec.Plain("--uses=$(API_TOKEN)")}
	d.Server.ConfigFiles = []*spec.ConfigFile{{Path: "token", Content: spec.Sensitive(fileSecret), Mode: 0o644}}
	startTest(t, p, d, 0)
	eventually(t, 5*time.Second, func() error {
		got, err := httpGet(port, "/env?name=API_TOKEN")
		if err == nil && got != envSecret {
			err = fmt.Errorf("API_TOKEN is %q in the replica", got)
		}
		return err
	})
	dir, _ := p.instanceDir(testManagedBy, "vault", 0)
	// Where each secret may be.
	allowed := map[string][]string{
		envSecret:  {"env", "argv"}, // argv: --uses=$(API_TOKEN) expands it
		argSecret:  {"argv"},
		fileSecret: {"work/token"},
	}
	for _, name := range []string{"env", "argv", "work/token"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %04o, want 0600", name, fi.Mode().Perm())
		}
	}
	filepath.WalkDir(dir, func(path string, de fs.DirEntry, err error) error {
		if err != nil || de.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		b, _ := os.ReadFile(path)
		for secret, where := range allowed {
			if bytes.Contains(b, []byte(secret)) && !contains(where, rel) {
				t.Errorf("%s holds the secret %s", rel, secret)
			}
		}
		return nil
	})
	var ls launchSpec
	hostfs.ReadJSON(filepath.Join(dir, specFile), &ls)
	if len(ls.Argv) != 3 || ls.Argv[1] != spec.Redacted || ls.Argv[2] != spec.Redacted {
		t.Errorf("spec.json argv %q", ls.Argv)
	}
	inst := observeOne(t, p, "vault", 0)
	if inst.State != providers.StateRunning || len(inst.Drift) != 0 {
		t.Errorf("state %s drift %v (%s)", inst.State, inst.Drift, inst.Message)
	}
	if b, _ := json.Marshal(inst); bytes.Contains(b, []byte("s3cr3t")) {
		t.Errorf("the observed instance holds a secret: %s", b)
	}

	// Errors do not show secrets: a sensitive program that is not there,
	// first by name, then by path (which fails in the supervisor).
	d2 := testDesired(t, "vault2", port, "h1", nil)
	d2.Server.Command = []spec.Value{spec.Sensitive("no-such-" + argSecret)}
	res := p.StartReplica(context.Background(), providers.StartRequest{Desired: d2})
	if res.Err == nil || strings.Contains(res.Err.Error(), argSecret) {
		t.Errorf("error shows the secret: %v", res.Err)
	}
	d3 := testDesired(t, "vault3", port, "h1", nil)
	d3.Server.Command = []spec.Value{spec.Sensitive("/nonexistent/" + argSecret)}
	inst3 := startTest(t, p, d3, 0)
	if inst3.State != providers.StateExited && inst3.State != providers.StateCrashing || inst3.ExitCode != 127 {
		t.Errorf("missing program: state %s exit %d", inst3.State, inst3.ExitCode)
	}
	if strings.Contains(inst3.Message, argSecret) || !strings.Contains(inst3.Message, spec.Redacted) {
		t.Errorf("message %q", inst3.Message)
	}
	dir3, _ := p.instanceDir(testManagedBy, "vault3", 0)
	for _, name := range []string{statusFile, supLogFile, specFile} {
		if b, _ := os.ReadFile(filepath.Join(dir3, name)); bytes.Contains(b, []byte(argSecret)) {
			t.Errorf("%s shows the secret", name)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
