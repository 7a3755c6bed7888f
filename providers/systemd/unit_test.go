package systemd

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tendhq/tend/providers"
	"github.com/tendhq/tend/providers/internal/hostfs"
	"github.com/tendhq/tend/spec"
)

// These tests need no systemd.

func TestUnitName(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		managedBy, server string
		replica           int
		want              string
	}{
		{"tend", "notes", 0, "tend.tend.notes.0.service"},
		{"conformance-123", "conformance-web", 2, "tend.conformance-123.conformance-web.2.service"},
		{"ops@host.example", "api", 1, "tend.ops_40host_2eexample.api.1.service"},
		{"a_b", "x", 0, "tend.a_5fb.x.0.service"},
		{"a b/c", "x", 0, "tend.a_20b_2fc.x.0.service"},
	} {
		got, err := unitName(c.managedBy, c.server, c.replica)
		if err != nil || got != c.want {
			t.Errorf("unitName(%q, %q, %d) = %q, %v; want %q", c.managedBy, c.server, c.replica, got, err, c.want)
		}
	}
	// Two tends whose names would collide with a plain '-' join do not.
	a, _ := unitName("a-b", "c", 0)
	b, _ := unitName("a", "b-c", 0)
	if a == b {
		t.Errorf("managed-by a-b/server c and managed-by a/server b-c share the unit %s", a)
	}
	// The pattern of one tend matches no unit of another whose name
	// extends it.
	pat := unitPattern("a")
	other, _ := unitName("a-x", "web", 0)
	if ok, _ := filepath.Match(pat, other); ok {
		t.Errorf("the pattern %s of tend a matches %s of tend a-x", pat, other)
	}
	mine, _ := unitName("a", "web", 0)
	if ok, _ := filepath.Match(pat, mine); !ok {
		t.Errorf("the pattern %s does not match %s", pat, mine)
	}
	if _, err := unitName(strings.Repeat("m", 300), "x", 0); err == nil {
		t.Error("a unit name past 255 characters was accepted")
	}
	if _, err := unitName("m", "x", -1); err == nil {
		t.Error("replica -1 was accepted")
	}
}

func testUnitSpec() unitSpec {
	return unitSpec{
		ID: providers.Identity{ManagedBy: "tend", Server: "notes", Replica: 1, SpecHash: "abc123",
			Revision: "deadbeef", Version: "1.2.3"},
		Provider:   "systemd.local",
		Argv:       []string{"/opt/tend/notes/1.2.3/bin/notes", "--port", "8001", "100%", `say "hi" \ $HOME`, ";", "--token=s3cr3t"},
		SecretArgs: map[int]string{6: "TEND_ARG_6"},
		WorkDir:    "/var/lib/tend/work",
		User:       "notes",
		Env:        map[string]string{"PORT": "8001", "MODE": `50% "a" $X`, "MULTI": "one\ntwo"},
		EnvFile:    "/var/lib/tend/env",
		Resources:  &spec.Resources{MilliCPU: 1250, MemoryBytes: 256 << 20},
		Ports:      map[string]int{"http": 8001, "metrics": 9001},
		Artifact:   "/opt/tend/notes/1.2.3",
		WantedBy:   "multi-user.target",
	}
}

func TestRenderUnit(t *testing.T) {
	t.Parallel()
	runtime, ident, err := renderUnit(testUnitSpec())
	if err != nil {
		t.Fatal(err)
	}
	got := string(runtime) + string(ident)
	for _, want := range []string{
		"[Unit]\nDescription=tend: notes replica 1 (version 1.2.3)\n",
		"StartLimitIntervalSec=30\nStartLimitBurst=5\n",
		"[Service]\nType=exec\n",
		`ExecStart="/opt/tend/notes/1.2.3/bin/notes" "--port" "8001" "100%%" "say \"hi\" \\ $$HOME" \; ${TEND_ARG_6}` + "\n",
		"WorkingDirectory=/var/lib/tend/work\n",
		"User=notes\n",
		`Environment="MODE=50%% \"a\" $X"` + "\n",
		`Environment="MULTI=one\ntwo"` + "\n",
		`Environment="PORT=8001"` + "\n",
		"EnvironmentFile=/var/lib/tend/env\n",
		"Restart=always\nRestartSec=1\n",
		"TimeoutStopSec=10000ms\n",
		"CPUAccounting=yes\nMemoryAccounting=yes\n",
		"CPUQuota=125%\n",
		"MemoryMax=268435456\n",
		"[Install]\nWantedBy=multi-user.target\n",
		"[X-Tend]\nManagedBy=tend\nServer=notes\nReplica=1\nSpecHash=abc123\nRevision=deadbeef\nVersion=1.2.3\nProvider=systemd.local\nPorts=http=8001,metrics=9001\nArtifact=/opt/tend/notes/1.2.3\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("the unit file lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "s3cr3t") {
		t.Errorf("the unit file holds the secret argument:\n%s", got)
	}
	if bytes.Contains(runtime, []byte("[X-Tend]")) {
		t.Error("the identity is in the runtime part")
	}

	// The identity reads back.
	id, ok := identityOf(parseUnitFile([]byte(got)))
	if !ok {
		t.Fatal("no identity read back")
	}
	want := testUnitSpec()
	if id.Identity != want.ID || id.Provider != want.Provider || id.Artifact != want.Artifact || formatPorts(id.Ports) != formatPorts(want.Ports) {
		t.Errorf("identity read back %+v, want %+v", id, want.ID)
	}
	// A file without the section is not tend's.
	if _, ok := identityOf(parseUnitFile([]byte("[Service]\nExecStart=/bin/true\n"))); ok {
		t.Error("a unit without [X-Tend] was taken for tend's")
	}

	// Refusals.
	bad := testUnitSpec()
	bad.SecretArgs = map[int]string{0: "TEND_ARG_0"}
	if _, _, err := renderUnit(bad); err == nil {
		t.Error("a secret program was accepted")
	}
	bad = testUnitSpec()
	bad.Env = map[string]string{"BAD-NAME": "x"}
	if _, _, err := renderUnit(bad); err == nil || !strings.Contains(err.Error(), "BAD-NAME") {
		t.Errorf("an invalid variable name: %v", err)
	}
	bad = testUnitSpec()
	bad.WorkDir = "relative"
	if _, _, err := renderUnit(bad); err == nil {
		t.Error("a relative working directory was accepted")
	}
}

func TestCPUQuota(t *testing.T) {
	t.Parallel()
	for milli, want := range map[int64]string{1000: "100%", 500: "50%", 125: "12.5%", 2000: "200%", 1: "0.1%"} {
		if got := cpuQuota(milli); got != want {
			t.Errorf("cpuQuota(%d) = %q, want %q", milli, got, want)
		}
	}
}

func TestRenderEnvFile(t *testing.T) {
	t.Parallel()
	b, err := renderEnvFile("replica 0 of server x", map[string]string{"B": `a"b\c$d` + "`e`", "A": "line1\nline2"})
	if err != nil {
		t.Fatal(err)
	}
	want := "# Written by tend: the secret environment of replica 0 of server x (mode 0600).\n" +
		"A=\"line1\nline2\"\n" +
		"B=\"a\\\"b\\\\c\\$d\\`e\\`\"\n"
	if string(b) != want {
		t.Errorf("env file:\n%s\nwant:\n%s", b, want)
	}
	if _, err := renderEnvFile("x", map[string]string{"1X": "v"}); err == nil {
		t.Error("an invalid variable name was accepted")
	}
	if vals := envFileValues(b); len(vals) == 0 {
		t.Error("envFileValues found no values")
	}
}

func TestStateOf(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name    string
		u       unitProps
		hasFile bool
		want    providers.State
		code    int
		msg     string
	}{
		{"running", unitProps{Load: "loaded", Active: "active", Sub: "running"}, true, providers.StateRunning, 0, ""},
		{"starting", unitProps{Load: "loaded", Active: "activating", Sub: "start"}, true, providers.StateStarting, 0, "starting"},
		{"restarting once", unitProps{Load: "loaded", Active: "activating", Sub: "auto-restart", NRestarts: 1, ExecMainCode: 2, ExecMainStatus: 9}, true, providers.StateStarting, 137, "killed by signal 9"},
		{"crash loop", unitProps{Load: "loaded", Active: "activating", Sub: "auto-restart", NRestarts: 2, ExecMainCode: 1, ExecMainStatus: 1}, true, providers.StateCrashing, 1, "2 restarts"},
		{"start limit", unitProps{Load: "loaded", Active: "failed", Sub: "failed", Result: "start-limit-hit", NRestarts: 4, ExecMainCode: 1, ExecMainStatus: 1}, true, providers.StateCrashing, 1, "start limit hit"},
		{"failed", unitProps{Load: "loaded", Active: "failed", Sub: "failed", Result: "exit-code", ExecMainCode: 1, ExecMainStatus: 203}, true, providers.StateExited, 203, "could not execute"},
		{"inactive", unitProps{Load: "loaded", Active: "inactive", Sub: "dead", ExecMainCode: 1, ExecMainStatus: 0}, true, providers.StateExited, 0, "inactive"},
		{"never started", unitProps{Load: "loaded", Active: "inactive", Sub: "dead"}, true, providers.StateExited, 0, "not started"},
		{"stopping", unitProps{Load: "loaded", Active: "deactivating", Sub: "stop-sigterm"}, true, providers.StateExited, 0, "stopping"},
		{"not loaded", unitProps{}, true, providers.StateExited, 0, "not loaded"},
		{"file gone", unitProps{}, false, providers.StateMissing, 0, "gone"},
		{"not found", unitProps{Load: "not-found", Active: "inactive"}, false, providers.StateMissing, 0, "does not find"},
		{"running without file", unitProps{Load: "not-found", Active: "active", Sub: "running"}, false, providers.StateRunning, 0, ""},
		{"bad setting", unitProps{Load: "bad-setting", Active: "inactive", LoadError: "bad ExecStart"}, true, providers.StateExited, 0, "bad ExecStart"},
		{"masked", unitProps{Load: "masked", Active: "inactive"}, true, providers.StateExited, 0, "masked"},
	} {
		t.Run(c.name, func(t *testing.T) {
			st, code, msg := stateOf(c.u, c.hasFile)
			if st != c.want || code != c.code || !strings.Contains(msg, c.msg) {
				t.Errorf("stateOf(%+v) = %s, %d, %q; want %s, %d, a message with %q", c.u, st, code, msg, c.want, c.code, c.msg)
			}
		})
	}
}

type tarEntry struct {
	mode int64
	body []byte
	link string
}

func tarGz(t *testing.T, files map[string]tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, name := range sortedKeys(files) {
		f := files[name]
		hdr := &tar.Header{Name: name, Mode: f.mode, Size: int64(len(f.body)), ModTime: time.Now(), Typeflag: tar.TypeReg}
		if f.link != "" {
			hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeSymlink, f.link, 0
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		tw.Write(f.body)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	zw.Close()
	return buf.Bytes()
}

func zipOf(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, name := range sortedKeys(files) {
		h := &zip.FileHeader{Name: name, Method: zip.Deflate}
		h.SetMode(0o755)
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(files[name]))
	}
	zw.Close()
	return buf.Bytes()
}

// newOfflineProvider is a provider whose directories are the test's; it
// never reaches systemd.
func newOfflineProvider(t *testing.T, keep int) *Provider {
	t.Helper()
	dir := t.TempDir()
	p, err := New(&spec.Provider{Type: Type, Name: "offline", Systemd: &spec.SystemdSettings{
		UnitDir: filepath.Join(dir, "units"), ArtifactDir: filepath.Join(dir, "artifacts"), KeepArtifacts: keep,
	}}, providers.Env{StateDir: filepath.Join(dir, "state"), ManagedBy: "offline"})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestArtifacts(t *testing.T) {
	t.Parallel()
	p := newOfflineProvider(t, 2)
	srv := newArtifactServer(t)
	ctx := context.Background()
	server := func(v, url, sum string, extract bool) *spec.Server {
		return &spec.Server{Name: "notes", Version: v, Artifact: &spec.Artifact{URL: url, SHA256: sum, Extract: extract}}
	}

	tgz := tarGz(t, map[string]tarEntry{"bin/notes": {mode: 0o755, body: []byte("#!/bin/sh\n")}, "bin/link": {link: "notes"}})
	url := srv.put("/notes-1.0.0.tar.gz", tgz)
	// A wrong digest installs nothing.
	if _, err := p.ensureArtifact(ctx, server("1.0.0", url, strings.Repeat("a", 64), true)); err == nil || !strings.Contains(err.Error(), "sha256") {
		t.Fatalf("wrong digest: %v", err)
	}
	if _, err := os.Stat(filepath.Join(p.ArtifactDir(), "notes", "1.0.0")); err == nil {
		t.Error("a download with a wrong digest was installed")
	}
	dir, err := p.ensureArtifact(ctx, server("1.0.0", url, strings.ToUpper(hostfs.SHA256Hex(tgz)), true))
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "bin", "notes")); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("bin/notes: %v %v", fi, err)
	}
	if l, err := os.Readlink(filepath.Join(dir, "bin", "link")); err != nil || l != "notes" {
		t.Errorf("bin/link: %q %v", l, err)
	}
	// Present: not downloaded again.
	if _, err := p.ensureArtifact(ctx, server("1.0.0", url, hostfs.SHA256Hex(tgz), true)); err != nil {
		t.Fatal(err)
	}
	if n := srv.count("/notes-1.0.0.tar.gz"); n != 2 {
		t.Errorf("1.0.0 requested %d times, want 2 (one refused, one installed)", n)
	}
	// Resolving the program against the artifact.
	if prog, err := resolveProgram("bin/notes", dir, defaultPath); err != nil || prog != filepath.Join(dir, "bin", "notes") {
		t.Errorf("resolveProgram: %q %v", prog, err)
	}
	if _, err := resolveProgram("bin/missing", dir, defaultPath); err == nil || !strings.Contains(err.Error(), "bin/") {
		t.Errorf("a program missing from the artifact: %v", err)
	}
	if _, err := resolveProgram("../../etc/passwd", dir, defaultPath); err == nil {
		t.Error("a program outside the artifact was accepted")
	}

	// A zip, and a plain file.
	z := zipOf(t, map[string]string{"notes": "#!/bin/sh\n"})
	dir2, err := p.ensureArtifact(ctx, server("1.1.0", srv.put("/notes.zip", z), hostfs.SHA256Hex(z), true))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir2, "notes")); err != nil {
		t.Error(err)
	}
	plain := []byte("#!/bin/sh\necho hi\n")
	dir3, err := p.ensureArtifact(ctx, server("1.2.0", srv.put("/dl/notes-linux", plain), hostfs.SHA256Hex(plain), false))
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(dir3, "notes-linux")); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("the plain artifact: %v %v", fi, err)
	}
	// extract = true of something that is no archive.
	if _, err := p.ensureArtifact(ctx, server("1.3.0", srv.put("/x", plain), hostfs.SHA256Hex(plain), true)); err == nil || !strings.Contains(err.Error(), "neither") {
		t.Errorf("extracting a non-archive: %v", err)
	}
	// A missing file.
	if _, err := p.ensureArtifact(ctx, server("1.4.0", srv.URL+"/missing", hostfs.SHA256Hex(plain), false)); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("a missing download: %v", err)
	}
	// A token in the URL is not shown.
	if _, err := p.ensureArtifact(ctx, server("1.5.0", "http://user:tok3n@127.0.0.1:1/x", hostfs.SHA256Hex(plain), false)); err == nil || strings.Contains(err.Error(), "tok3n") {
		t.Errorf("a URL with a password: %v", err)
	}

	// Pruning: keep 2 by last use, and whatever a unit names.
	time.Sleep(10 * time.Millisecond)
	if err := os.MkdirAll(p.UnitDir(), 0o755); err != nil {
		t.Fatal(err)
	}
	us := testUnitSpec()
	us.Artifact = dir // 1.0.0 is in use
	rt, id, _ := renderUnit(us)
	if err := os.WriteFile(filepath.Join(p.UnitDir(), "tend.other.notes.0.service"), append(rt, id...), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := p.pruneArtifacts("notes", dir3); err != nil {
		t.Fatal(err)
	}
	var left []string
	entries, _ := os.ReadDir(filepath.Join(p.ArtifactDir(), "notes"))
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), ".") {
			left = append(left, e.Name())
		}
	}
	// 1.2.0 and 1.1.0 are the newest two; 1.0.0 is in use.
	if strings.Join(left, ",") != "1.0.0,1.1.0,1.2.0" {
		t.Errorf("after pruning: %v", left)
	}
	os.Remove(filepath.Join(p.UnitDir(), "tend.other.notes.0.service"))
	if _, err := p.ensureArtifact(ctx, server("1.1.0", srv.URL+"/notes.zip", hostfs.SHA256Hex(z), true)); err != nil { // used again: newest
		t.Fatal(err)
	}
	if err := p.pruneArtifacts("notes", ""); err != nil {
		t.Fatal(err)
	}
	left = nil
	entries, _ = os.ReadDir(filepath.Join(p.ArtifactDir(), "notes"))
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), ".") {
			left = append(left, e.Name())
		}
	}
	if strings.Join(left, ",") != "1.1.0,1.2.0" {
		t.Errorf("after pruning again: %v", left)
	}
}

func TestExtractRefusesEscapes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tgz := tarGz(t, map[string]tarEntry{"../evil": {mode: 0o644, body: []byte("x")}})
	f := filepath.Join(dir, "a.tgz")
	os.WriteFile(f, tgz, 0o644)
	out := filepath.Join(dir, "out")
	os.Mkdir(out, 0o755)
	if err := extract(context.Background(), f, out); err == nil {
		t.Error("an entry outside the directory was extracted")
	}
	if _, err := os.Stat(filepath.Join(dir, "evil")); err == nil {
		t.Error("../evil was written")
	}
}

func TestCommandSecretArgs(t *testing.T) {
	t.Parallel()
	p := newOfflineProvider(t, 1)
	s := &spec.Server{
		Name: "x", Version: "1", Replicas: 1,
		Command: []spec.Value{spec.Plain("/bin/sh")},
		Args:    []spec.Value{spec.Plain("-c"), spec.Plain("--token=$(TOKEN)"), spec.Sensitive("raw")},
		Env:     map[string]spec.Value{"TOKEN": spec.Sensitive("tok")},
	}
	d := &providers.Desired{Server: s, SpecHash: "h", Revision: "r", ManagedBy: "m"}
	l, err := p.prepare(d, "m", 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.command(s, ""); err != nil {
		t.Fatal(err)
	}
	if l.secretArgs[2] != "TEND_ARG_2" || l.secretArgs[3] != "TEND_ARG_3" || len(l.secretArgs) != 2 {
		t.Errorf("secret args %v", l.secretArgs)
	}
	if l.secretEnv["TEND_ARG_2"] != "--token=tok" || l.secretEnv["TOKEN"] != "tok" || l.secretEnv["TEND_ARG_3"] != "raw" {
		t.Errorf("secret env %v", l.secretEnv)
	}
	if _, ok := l.plainEnv["TOKEN"]; ok {
		t.Error("TOKEN is in the plain environment")
	}
	s.Command = []spec.Value{spec.Plain("/no/such/$(TOKEN)")}
	l, _ = p.prepare(d, "m", 0)
	if err := l.command(s, ""); err == nil || strings.Contains(l.red.Error(err).Error(), "tok") {
		t.Errorf("a secret program: %v", err)
	}
}

// TestNotReachable checks the message of a host without systemd. New does
// not connect; the first call does.
func TestNotReachable(t *testing.T) {
	if _, err := os.Stat("/run/systemd/system"); err == nil {
		t.Skip("this host runs systemd")
	}
	t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", "unix:path="+filepath.Join(t.TempDir(), "no-bus"))
	p := newOfflineProvider(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res := p.Observe(ctx, providers.ObserveRequest{})
	if res.Err == nil || !strings.Contains(res.Err.Error(), "is this host running systemd?") {
		t.Fatalf("Observe without systemd: %v", res.Err)
	}
}
