package systemd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tendhq/tend/providers"
	"github.com/tendhq/tend/providers/internal/hostfs"
	"github.com/tendhq/tend/spec"
)

// artifactServer serves artifacts over loopback HTTP and counts the
// requests of each path.
type artifactServer struct {
	*httptest.Server
	mu    sync.Mutex
	files map[string][]byte
	hits  map[string]int
}

func newArtifactServer(t *testing.T) *artifactServer {
	t.Helper()
	a := &artifactServer{files: map[string][]byte{}, hits: map[string]int{}}
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		a.hits[r.URL.Path]++
		b, ok := a.files[r.URL.Path]
		a.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write(b)
	}))
	t.Cleanup(a.Close)
	return a
}

func (a *artifactServer) put(path string, b []byte) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.files[path] = b
	return a.URL + path
}

func (a *artifactServer) count(path string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.hits[path]
}

// launcherScript is an artifact's program: a script that runs the test
// binary as the test server.
func launcherScript(t *testing.T) []byte {
	return []byte("#!/bin/sh\nexec " + testExe(t) + " \"$@\"\n")
}

// TestInsideArtifacts deploys servers from downloaded artifacts: a wrong
// digest is refused before anything is written, a version is downloaded
// once, old versions are pruned beyond keep_artifacts, and a rollback to a
// kept version downloads nothing.
func TestInsideArtifacts(t *testing.T) {
	inside(t)
	p, managedBy := newTestProvider(t, 2)
	srv := newArtifactServer(t)
	port := freePorts(t, 3)
	versions := []string{"1.0.0", "1.1.0", "1.2.0", "1.3.0"}
	sums := map[string]string{}
	for _, v := range versions {
		tgz := tarGz(t, map[string]tarEntry{"bin/server": {mode: 0o755, body: launcherScript(t)}, "VERSION": {mode: 0o644, body: []byte(v)}})
		srv.put("/server-"+v+".tar.gz", tgz)
		sums[v] = hostfs.SHA256Hex(tgz)
	}
	desired := func(v, sum string) *providers.Desired {
		s := testServer(t, "art", v, port)
		s.Replicas = 2
		s.Command = []spec.Value{spec.Plain("bin/server")}
		s.Artifact = &spec.Artifact{URL: srv.URL + "/server-" + v + ".tar.gz", SHA256: sum, Extract: true}
		return desiredOf(s, managedBy)
	}

	// A wrong digest: nothing is installed, no unit is written.
	bad := p.StartReplica(ctxT(t), providers.StartRequest{Desired: desired("1.0.0", strings.Repeat("0", 64)), Replica: 0})
	if bad.Err == nil || !strings.Contains(bad.Err.Error(), "sha256") {
		t.Fatalf("StartReplica with a wrong sha256: %v, want an error about the digest", bad.Err)
	}
	if _, err := os.Stat(filepath.Join(p.ArtifactDir(), "art", "1.0.0")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a download with a wrong digest left %s/art/1.0.0 (%v)", p.ArtifactDir(), err)
	}
	if name, _ := unitName(managedBy, "art", 0); exists(p.unitPath(name)) {
		t.Errorf("a refused start wrote the unit file %s", name)
	}

	// Two replicas of 1.0.0: one download.
	for i := range 2 {
		inst := start(t, p, desired("1.0.0", sums["1.0.0"]), i)
		if inst.State.Failed() {
			t.Fatalf("replica %d: %s (%s)", i, inst.State, inst.Message)
		}
		waitHealth(t, port+i, "1.0.0")
	}
	if n := srv.count("/server-1.0.0.tar.gz"); n != 2 { // the bad-digest try, then one good download
		t.Errorf("1.0.0 was requested %d times, want 2 (one refused for its digest, one installed)", n)
	}
	if b, err := os.ReadFile(filepath.Join(p.ArtifactDir(), "art", "1.0.0", "VERSION")); err != nil || string(b) != "1.0.0" {
		t.Errorf("the extracted artifact: %q %v", b, err)
	}

	// Upgrades 1.1.0 → 1.3.0, replica by replica: keep_artifacts = 2.
	for _, v := range versions[1:] {
		for i := range 2 {
			start(t, p, desired(v, sums[v]), i)
			waitHealth(t, port+i, v)
		}
		if n := srv.count("/server-" + v + ".tar.gz"); n != 1 {
			t.Errorf("%s was requested %d times, want once", v, n)
		}
	}
	entries, _ := os.ReadDir(filepath.Join(p.ArtifactDir(), "art"))
	var kept []string
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), ".") {
			kept = append(kept, e.Name())
		}
	}
	if strings.Join(kept, ",") != "1.2.0,1.3.0" {
		t.Errorf("artifact versions kept: %v, want 1.2.0 and 1.3.0 (keep_artifacts = 2)", kept)
	}

	// A rollback to a kept version downloads nothing.
	for i := range 2 {
		start(t, p, desired("1.2.0", sums["1.2.0"]), i)
		waitHealth(t, port+i, "1.2.0")
	}
	if n := srv.count("/server-1.2.0.tar.gz"); n != 1 {
		t.Errorf("rolling back to 1.2.0 downloaded it again (%d requests)", n)
	}
	inst := observeOne(t, p, managedBy, "art", 0)
	if inst.Version != "1.2.0" || inst.State != providers.StateRunning || len(inst.Drift) != 0 {
		t.Errorf("after the rollback: %+v", inst)
	}

	// A plain file (extract = false) keeps its name and is executable.
	script := launcherScript(t)
	url := srv.put("/launch.sh", script)
	s := testServer(t, "art-file", "2.0.0", port+2)
	s.Command = []spec.Value{spec.Plain("launch.sh")}
	s.Artifact = &spec.Artifact{URL: url, SHA256: hostfs.SHA256Hex(script)}
	start(t, p, desiredOf(s, managedBy), 0)
	waitHealth(t, port+2, "2.0.0")
}

// TestInsideSecrets checks that secrets reach the replica only through
// the 0600 environment file and 0600 config files: never the unit file,
// systemd's view of the unit, nor an error.
func TestInsideSecrets(t *testing.T) {
	inside(t)
	const token, fileSecret = "s3cr3t-token-value", "s3cr3t-file-value"
	p, managedBy := newTestProvider(t, 2)
	port := freePorts(t, 1)
	s := testServer(t, "secrets", "1.0.0", port)
	s.Env["API_TOKEN"] = spec.Sensitive(token)
	s.Env["PERCENT"] = spec.Plain(`100% "quoted" $HOME \ back`)
	s.Args = []spec.Value{spec.Plain("--mode=serve"), spec.Plain("--token=$(API_TOKEN)"), spec.Plain("$literal")}
	s.ConfigFiles = []*spec.ConfigFile{
		{Path: "config.yaml", Content: spec.Plain("plain: yes\n"), Mode: 0o644},
		{Path: "secrets/token", Content: spec.Sensitive(fileSecret), Mode: 0o600},
	}
	d := desiredOf(s, managedBy)
	inst := start(t, p, d, 0)
	waitHealth(t, port, "1.0.0")

	unitFile, err := os.ReadFile(p.unitPath(inst.ID))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(unitFile, []byte("s3cr3t")) {
		t.Errorf("the unit file holds a secret:\n%s", unitFile)
	}
	var rec record
	if err := hostfs.ReadJSON(filepath.Join(p.instanceDir(managedBy, "secrets", 0), recordFile), &rec); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(rec.EnvFile)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("the environment file has mode %04o, want 0600", fi.Mode().Perm())
	}
	if b, _ := os.ReadFile(rec.EnvFile); !bytes.Contains(b, []byte(token)) {
		t.Errorf("the environment file lacks the token:\n%s", b)
	}
	rb, _ := os.ReadFile(filepath.Join(p.instanceDir(managedBy, "secrets", 0), recordFile))
	if bytes.Contains(rb, []byte("s3cr3t")) {
		t.Errorf("the record holds a secret:\n%s", rb)
	}
	if fi, err := os.Stat(filepath.Join(rec.WorkDir, "secrets", "token")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("the secret config file: %v, mode %v; want 0600", err, fi)
	}

	// systemd's own view: Environment and ExecStart hold no secret.
	conn, err := p.bus(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	sp, err := conn.GetUnitTypePropertiesContext(ctxT(t), inst.ID, "Service")
	if err != nil {
		t.Fatal(err)
	}
	if s := fmt.Sprint(sp["Environment"], sp["ExecStart"]); strings.Contains(s, "s3cr3t") {
		t.Errorf("systemd shows a secret in the unit's properties: %s", s)
	}

	// The replica gets every value as written.
	for name, want := range map[string]string{"API_TOKEN": token, "PERCENT": `100% "quoted" $HOME \ back`} {
		if got, err := httpGet(port, "/env?name="+name); err != nil || got != want {
			t.Errorf("the replica's %s: %q %v, want %q", name, got, err, want)
		}
	}
	if got, err := httpGet(port, "/args"); err != nil || got != "--mode=serve --token="+token+" $literal" {
		t.Errorf("the replica's arguments: %q %v", got, err)
	}
	inst = observeOne(t, p, managedBy, "secrets", 0)
	if len(inst.Drift) != 0 || inst.State != providers.StateRunning {
		t.Errorf("observed %s with drift %q", inst.State, inst.Drift)
	}

	// Errors name no secret.
	bad := testServer(t, "secrets-bad", "1.0.0", port)
	bad.Env["API_TOKEN"] = spec.Sensitive(token)
	bad.Command = []spec.Value{spec.Plain("/no/such/dir/$(API_TOKEN)")}
	if r := p.StartReplica(ctxT(t), providers.StartRequest{Desired: desiredOf(bad, managedBy), Replica: 0}); r.Err == nil || strings.Contains(r.Err.Error(), token) {
		t.Errorf("a program path with a secret: error %v, want one that hides the secret", r.Err)
	}
	bad.Command = []spec.Value{spec.Plain("/no/such/program"), spec.Plain("$(API_TOKEN)")}
	if r := p.StartReplica(ctxT(t), providers.StartRequest{Desired: desiredOf(bad, managedBy), Replica: 0}); r.Err == nil || strings.Contains(r.Err.Error(), token) {
		t.Errorf("a missing program: error %v, want one without the secret", r.Err)
	}
	ex := p.Exec(ctxT(t), providers.ExecRequest{Desired: d, Command: []string{"/no/such/" + token}})
	if ex.Err == nil || strings.Contains(ex.Err.Error(), token) {
		t.Errorf("Exec of a missing program named by a secret: %v", ex.Err)
	}
}

// TestInsideExec runs one-off tasks as transient units: with the server's
// environment, config files and volumes and no replica (a hook), beside a
// replica, with a failing exit code, and killed when its context ends.
func TestInsideExec(t *testing.T) {
	inside(t)
	p, managedBy := newTestProvider(t, 2)
	port := freePorts(t, 1)
	s := testServer(t, "exec", "1.0.0", port)
	s.Env["GREETING"] = spec.Plain("hello")
	s.Env["EXEC_EXIT"] = spec.Plain("3")
	s.Env["TASK_SECRET"] = spec.Sensitive("task-secret-value")
	s.ConfigFiles = []*spec.ConfigFile{{Path: "config.yaml", Content: spec.Plain("answer: 42"), Mode: 0o644}}
	s.Volumes = []*spec.Volume{{Name: "data", Path: "/data"}}
	d := desiredOf(s, managedBy)

	// A hook: no replica runs yet.
	var out, errOut bytes.Buffer
	res := p.Exec(ctxT(t), providers.ExecRequest{Desired: d, Command: []string{testExe(t), "__test-exec", "a b", "$(GREETING)", "$(TASK_SECRET)"}, Stdout: &out, Stderr: &errOut})
	if res.Err != nil {
		t.Fatalf("Exec: %v (stderr %q)", res.Err, errOut.String())
	}
	if res.ExitCode != 3 {
		t.Errorf("exit code %d, want 3", res.ExitCode)
	}
	got := out.String()
	for _, want := range []string{"GREETING=hello\n", "ARGS=a b hello task-secret-value\n", "CONFIG=answer: 42\n", "VOLUME=" + p.volumeDir(managedBy, "exec", "data", 0) + "\n", "CWD=" + filepath.Join(p.Root(), ".tasks")} {
		if !strings.Contains(got, want) {
			t.Errorf("the task's output lacks %q:\n%s", want, got)
		}
	}
	if !strings.Contains(errOut.String(), "exec stderr") {
		t.Errorf("the task's stderr: %q", errOut.String())
	}
	if left, _ := os.ReadDir(filepath.Join(p.Root(), ".tasks")); len(left) != 0 {
		t.Errorf("the task left %d directories in .tasks", len(left))
	}

	// Beside a replica: its working directory and environment; $ reaches
	// the shell as written.
	inst := start(t, p, d, 0)
	waitHealth(t, port, "1.0.0")
	out.Reset()
	res = p.Exec(ctxT(t), providers.ExecRequest{Instance: &inst, Command: []string{"sh", "-c", "echo $GREETING; pwd; cat config.yaml"}, Stdout: &out})
	if res.Err != nil || res.ExitCode != 0 {
		t.Fatalf("Exec beside the replica: %d %v", res.ExitCode, res.Err)
	}
	var rec record
	if err := hostfs.ReadJSON(filepath.Join(p.instanceDir(managedBy, "exec", 0), recordFile), &rec); err != nil {
		t.Fatal(err)
	}
	if want := "hello\n" + rec.WorkDir + "\nanswer: 42"; out.String() != want {
		t.Errorf("Exec beside the replica printed %q, want %q", out.String(), want)
	}

	// Killed when its context ends.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	t0 := time.Now()
	res = p.Exec(ctx, providers.ExecRequest{Desired: d, Instance: &inst, Command: []string{"sleep", "60"}})
	if res.Err == nil || time.Since(t0) > 20*time.Second {
		t.Errorf("Exec of sleep 60 with a 1s context: %v after %v", res.Err, time.Since(t0))
	}
	// No task unit is left.
	conn, _ := p.bus(ctxT(t))
	list, err := conn.ListUnitsByPatternsContext(ctxT(t), nil, []string{"tend-task.*"})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range list {
		if u.ActiveState != "inactive" {
			t.Errorf("a task unit is left: %s %s/%s", u.Name, u.ActiveState, u.SubState)
		}
	}
}

// TestInsideStatsAndLogs reads a replica's cgroup accounting and journal.
func TestInsideStatsAndLogs(t *testing.T) {
	inside(t)
	p, managedBy := newTestProvider(t, 2)
	port := freePorts(t, 1)
	s := testServer(t, "stats", "1.0.0", port)
	s.Resources = &spec.Resources{MemoryBytes: 512 << 20}
	inst := start(t, p, desiredOf(s, managedBy), 0)
	waitHealth(t, port, "1.0.0")

	done := make(chan struct{})
	go func() {
		defer close(done)
		httpGet(port, "/burn?ms=1500")
	}()
	time.Sleep(200 * time.Millisecond)
	t0 := time.Now()
	st, err := p.Stats(ctxT(t), inst)
	took := time.Since(t0)
	<-done
	if err != nil {
		t.Fatal(err)
	}
	if st.CPUPercent <= 0 || st.MemoryBytes <= 0 || st.MemoryPercent <= 0 || st.MemoryPercent > 100 {
		t.Errorf("stats after some work: %+v, want CPU and memory above 0", st)
	}
	// The replica's threads (the unit's tasks), and the connection of the
	// request it is working on.
	if !st.HasThreads || st.Threads < 1 {
		t.Errorf("stats %+v, want at least 1 thread", st)
	}
	if !st.HasConnections || st.Connections < 1 {
		t.Errorf("stats %+v while a request is in flight, want at least 1 connection", st)
	}
	t.Logf("stats: %+v in %v", st, took)

	eventually(t, 10*time.Second, func() error {
		b, err := p.Logs(ctxT(t), inst, 10)
		if err != nil {
			return err
		}
		for _, want := range []string{"listening on port", "a line on stderr"} {
			if !bytes.Contains(b, []byte(want)) {
				return fmt.Errorf("the logs lack %q:\n%s", want, b)
			}
		}
		return nil
	})
}

// TestInsideLeavesOthersAlone checks that Observe and StopReplica ignore
// units of another tend and units tend did not write.
func TestInsideLeavesOthersAlone(t *testing.T) {
	inside(t)
	p, managedBy := newTestProvider(t, 2)
	port := freePorts(t, 2)
	// Another tend whose identity extends this one's.
	other, err := New(&spec.Provider{Type: Type, Name: "test", Systemd: &spec.SystemdSettings{UnitDir: defaultUnitDir}},
		providers.Env{StateDir: t.TempDir(), ManagedBy: managedBy + "-x"})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	od := desiredOf(testServer(t, "web", "1.0.0", port), managedBy+"-x")
	oinst := start(t, other, od, 0)
	t.Cleanup(func() {
		other.StopReplica(context.Background(), providers.StopRequest{Instance: oinst, Grace: time.Second})
	})
	conn, err := p.bus(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	foreignTransient(t, conn, "tend-foreign-"+fmt.Sprint(os.Getpid())+".service")

	res := p.Observe(ctxT(t), providers.ObserveRequest{ManagedBy: managedBy})
	if res.Err != nil || len(res.Instances) != 0 {
		t.Fatalf("Observe of an empty tend: %v %+v", res.Err, res.Instances)
	}
	// A StopReplica naming the other tend's replica, but with this
	// tend's identity, stops nothing.
	if r := p.StopReplica(ctxT(t), providers.StopRequest{Instance: providers.Instance{Identity: providers.Identity{ManagedBy: managedBy, Server: "web"}}}); r.Err != nil {
		t.Fatal(r.Err)
	}
	waitHealth(t, port, "1.0.0")
	if u, err := p.props(ctxT(t), conn, oinst.ID); err != nil || u.Active != "active" {
		t.Errorf("the other tend's unit: %+v %v", u, err)
	}
}

// TestInsideUser runs a replica as another user (User=nobody): the process
// has that user's uid, reads its secret config file (0600, given to it),
// writes its volume, and cannot read the environment file that holds its
// secrets (systemd reads it as root).
func TestInsideUser(t *testing.T) {
	inside(t)
	const fileSecret, token = "s3cr3t-user-file", "s3cr3t-user-token"
	p, managedBy := newTestProvider(t, 2)
	// nobody must reach the replica's directory: the test's directories
	// are 0700.
	for d := p.root; d != "/" && d != "."; d = filepath.Dir(d) {
		if fi, err := os.Stat(d); err == nil && fi.Mode().Perm()&0o001 == 0 {
			if err := os.Chmod(d, fi.Mode().Perm()|0o011); err != nil {
				t.Fatal(err)
			}
		}
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Fatalf("the systemd test image (Debian) has a user nobody: %v", err)
	}
	port := freePorts(t, 1)
	s := testServer(t, "as-nobody", "1.0.0", port)
	s.User = "nobody"
	s.Env["API_TOKEN"] = spec.Sensitive(token)
	s.ConfigFiles = []*spec.ConfigFile{{Path: "secrets/token", Content: spec.Sensitive(fileSecret), Mode: 0o600}}
	s.Volumes = []*spec.Volume{{Name: "data", Path: "/data"}}
	d := desiredOf(s, managedBy)
	inst := start(t, p, d, 0)
	waitHealth(t, port, "1.0.0")

	if got, err := httpGet(port, "/uid"); err != nil || got != nobody.Uid+":"+nobody.Gid {
		t.Errorf("the replica runs as %q (%v), want nobody (%s:%s)", got, err, nobody.Uid, nobody.Gid)
	}
	if got, err := httpGet(port, "/read?path=secrets/token"); err != nil || got != fileSecret {
		t.Errorf("the replica reads its secret config file: %q %v", got, err)
	}
	if got, err := httpGet(port, "/env?name=API_TOKEN"); err != nil || got != token {
		t.Errorf("the replica's API_TOKEN: %q %v", got, err)
	}
	vol, err := httpGet(port, "/env?name=TEND_VOLUME_DATA")
	if err != nil || vol == "" {
		t.Fatalf("the replica's volume: %q %v", vol, err)
	}
	if got, err := httpGet(port, "/write?path="+filepath.Join(vol, "probe")); err != nil || got != "ok" {
		t.Errorf("the replica writes its volume: %q %v", got, err)
	}
	var rec record
	if err := hostfs.ReadJSON(filepath.Join(p.instanceDir(managedBy, "as-nobody", 0), recordFile), &rec); err != nil {
		t.Fatal(err)
	}
	if got, err := httpGet(port, "/read?path="+rec.EnvFile); err == nil {
		t.Errorf("the replica, as nobody, reads the environment file of its secrets: %q", got)
	}
	inst = observeOne(t, p, managedBy, "as-nobody", 0)
	if inst.State != providers.StateRunning || len(inst.Drift) != 0 {
		t.Errorf("observed %s (%s), drift %q", inst.State, inst.Message, inst.Drift)
	}

	// A user that does not exist is refused before anything starts.
	bad := testServer(t, "no-such-user", "1.0.0", port)
	bad.User = "no-such-user-xyz"
	if r := p.StartReplica(ctxT(t), providers.StartRequest{Desired: desiredOf(bad, managedBy), Replica: 0}); r.Err == nil || !strings.Contains(r.Err.Error(), "no-such-user-xyz") {
		t.Errorf("an unknown user: %v", r.Err)
	}
}
