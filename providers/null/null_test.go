package null

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/tendhq/tend/providers"
	"github.com/tendhq/tend/spec"
)

func newTestProvider(t testing.TB, stateDir, name string) *Provider {
	t.Helper()
	p, err := New(&spec.Provider{Type: Type, Name: name}, providers.Env{StateDir: stateDir, ManagedBy: "tend"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

func desired(name, version string, replicas int) *providers.Desired {
	s := &spec.Server{
		Name: name, Provider: "null.ci", ProviderType: Type, Version: version, Replicas: replicas,
		Ports: []spec.Port{{Name: "http", Number: 9000, Protocol: "tcp"}},
	}
	return &providers.Desired{Server: s, SpecHash: spec.RuntimeHash(s.Fields()), Revision: "rev-" + version, ManagedBy: "tend"}
}

func start(t testing.TB, p *Provider, d *providers.Desired, replicas ...int) {
	t.Helper()
	for _, i := range replicas {
		if r := p.StartReplica(context.Background(), providers.StartRequest{Desired: d, Replica: i}); r.Err != nil {
			t.Fatal(r.Err)
		}
	}
}

func observe(t testing.TB, p *Provider, managedBy, server string) []providers.Instance {
	t.Helper()
	res := p.Observe(context.Background(), providers.ObserveRequest{ManagedBy: managedBy, Server: server})
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	return res.Instances
}

func names(insts []providers.Instance) string {
	var b strings.Builder
	for _, in := range insts {
		fmt.Fprintf(&b, "%s/%d@%s ", in.Server, in.Replica, in.Version)
	}
	return strings.TrimSpace(b.String())
}

// A second provider on the same state directory (a second tend process)
// sees what the first recorded, with the spec hash, revision, ports and ID
// it was started with; and the first sees what the second changed.
func TestRecordsOutliveTheProvider(t *testing.T) {
	dir := t.TempDir()
	a := newTestProvider(t, dir, "ci")
	d := desired("api", "1.0.0", 2)
	start(t, a, d, 0, 1)
	start(t, a, desired("db", "3.1.0", 1), 0)
	want := observe(t, a, "tend", "")

	b := newTestProvider(t, dir, "ci")
	got := observe(t, b, "tend", "")
	if names(got) != "api/0@1.0.0 api/1@1.0.0 db/0@3.1.0" {
		t.Fatalf("a new provider observes %q, want api/0 api/1 db/0", names(got))
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.Identity != w.Identity || g.ID != w.ID || !g.StartedAt.Equal(w.StartedAt) || g.Ports["http"] != w.Ports["http"] || g.State != providers.StateRunning {
			t.Errorf("replica %s/%d read back as %+v, want %+v", g.Server, g.Replica, g, w)
		}
	}
	if got[1].Ports["http"] != 9001 || got[1].SpecHash != d.SpecHash || got[1].Revision != "rev-1.0.0" {
		t.Errorf("api replica 1 has ports %v, spec hash %q, revision %q; want http 9001, %q, rev-1.0.0", got[1].Ports, got[1].SpecHash, got[1].Revision, d.SpecHash)
	}

	// b stops api/1 and updates db: a sees both.
	if r := b.StopReplica(context.Background(), providers.StopRequest{Instance: got[1]}); r.Err != nil {
		t.Fatal(r.Err)
	}
	start(t, b, desired("db", "3.2.0", 1), 0)
	if n := names(observe(t, a, "tend", "")); n != "api/0@1.0.0 db/0@3.2.0" {
		t.Errorf("after another provider changed the records, the first observes %q, want api/0@1.0.0 db/0@3.2.0", n)
	}
}

// Observe honours the server filter and the managed-by identity.
func TestObserveFilters(t *testing.T) {
	p := newTestProvider(t, t.TempDir(), "ci")
	start(t, p, desired("a", "1.0.0", 3), 2, 0, 1)
	start(t, p, desired("b", "1.0.0", 1), 0)
	other := desired("a", "9.0.0", 1)
	other.ManagedBy = "other"
	start(t, p, other, 0)

	if n := names(observe(t, p, "tend", "a")); n != "a/0@1.0.0 a/1@1.0.0 a/2@1.0.0" {
		t.Errorf("Observe of server a lists %q, want its three replicas in order", n)
	}
	if n := names(observe(t, p, "tend", "")); n != "a/0@1.0.0 a/1@1.0.0 a/2@1.0.0 b/0@1.0.0" {
		t.Errorf("Observe of everything lists %q, want a's three replicas and b's", n)
	}
	if n := names(observe(t, p, "other", "")); n != "a/0@9.0.0" {
		t.Errorf("Observe for managed-by other lists %q, want only its own a/0@9.0.0", n)
	}
	if n := names(observe(t, p, "tend", "c")); n != "" {
		t.Errorf("Observe of a server without records lists %q", n)
	}
}

// Observing a provider that never recorded anything writes nothing (a plan
// leaves no files behind).
func TestObserveOfNothingWritesNothing(t *testing.T) {
	dir := t.TempDir()
	p := newTestProvider(t, dir, "ci")
	if n := names(observe(t, p, "tend", "")); n != "" {
		t.Fatalf("a new provider observes %q", n)
	}
	if _, err := os.Stat(filepath.Join(dir, "providers")); !os.IsNotExist(err) {
		t.Errorf("Observe made %s (err %v); it must not write", filepath.Join(dir, "providers"), err)
	}
	// Stopping a replica that has no record is no error, and no change.
	if r := p.StopReplica(context.Background(), providers.StopRequest{Instance: providers.Instance{Identity: providers.Identity{ManagedBy: "tend", Server: "x"}}}); r.Err != nil {
		t.Errorf("StopReplica of a replica without a record: %v", r.Err)
	}
	if b, err := os.ReadFile(filepath.Join(p.Dir(), logFile)); err != nil || len(b) != 0 {
		t.Errorf("StopReplica of a replica without a record left the log %q (err %v), want it empty", b, err)
	}
}

// Observe reads the files only when they changed, and a change appends one
// line instead of rewriting the records; a snapshot is written once the log
// is as long as it, and the records read back the same from it.
func TestAppendAndSnapshot(t *testing.T) {
	dir := t.TempDir()
	p := newTestProvider(t, dir, "ci")
	d := desired("s", "1.0.0", 1)
	start(t, p, d, 0)
	before := p.st.reloads
	for range 5 {
		observe(t, p, "tend", "")
	}
	if p.st.reloads != before {
		t.Errorf("5 observes of unchanged files read them %d times, want 0", p.st.reloads-before)
	}
	logPath := filepath.Join(p.Dir(), logFile)
	size := func() int64 {
		fi, err := os.Stat(logPath)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	s0 := size()
	start(t, p, d, 1)
	if grew := size() - s0; grew <= 0 || grew > 400 {
		t.Errorf("recording one replica grew the log by %d bytes, want one line", grew)
	}

	// Enough servers for snapshots.
	for i := range 3 * minCompact {
		start(t, p, desired(fmt.Sprintf("svc-%05d", i), "1.0.0", 1), 0)
	}
	if p.st.snapshots == 0 {
		t.Fatalf("%d changes wrote no snapshot", 3*minCompact)
	}
	if p.st.logLines >= max(minCompact, p.st.nRecords) {
		t.Errorf("after the snapshots the log holds %d lines for %d records", p.st.logLines, p.st.nRecords)
	}
	want := names(observe(t, p, "tend", ""))
	fresh := newTestProvider(t, dir, "ci")
	if got := names(observe(t, fresh, "tend", "")); got != want {
		t.Errorf("read back from the snapshot and log: %d bytes of names, want %d", len(got), len(want))
	}
	if n := len(observe(t, fresh, "tend", "")); n != 3*minCompact+2 {
		t.Errorf("read back %d replicas, want %d", n, 3*minCompact+2)
	}
	if m, _ := filepath.Glob(filepath.Join(p.Dir(), "*.tmp-*")); len(m) != 0 {
		t.Errorf("snapshots left temporary files: %q", m)
	}
}

// A line cut short by a crash is skipped when read and cut off by the next
// change; a line in the middle that is not a record is an error naming the
// file and line.
func TestCutLineAndDamage(t *testing.T) {
	dir := t.TempDir()
	p := newTestProvider(t, dir, "ci")
	start(t, p, desired("a", "1.0.0", 1), 0)
	logPath := filepath.Join(p.Dir(), logFile)
	f, err := os.OpenFile(logPath, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"managed_by":"tend","server":"b","repl`)
	f.Close()

	q := newTestProvider(t, dir, "ci")
	if n := names(observe(t, q, "tend", "")); n != "a/0@1.0.0" {
		t.Fatalf("with a cut last line, Observe lists %q, want a/0", n)
	}
	start(t, q, desired("c", "1.0.0", 1), 0)
	r := newTestProvider(t, dir, "ci")
	if n := names(observe(t, r, "tend", "")); n != "a/0@1.0.0 c/0@1.0.0" {
		t.Fatalf("after a change cut the cut line off, Observe lists %q, want a/0 c/0", n)
	}
	b, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), `"repl{`) || strings.Count(string(b), "\n") != 2 {
		t.Errorf("the log after the cut line was cut off:\n%s", b)
	}

	os.WriteFile(logPath, append([]byte("not json\n"), b...), 0o644)
	res := newTestProvider(t, dir, "ci").Observe(context.Background(), providers.ObserveRequest{ManagedBy: "tend"})
	if res.Err == nil || !strings.Contains(res.Err.Error(), logFile+" line 1 is not a record") {
		t.Errorf("Observe of a damaged log: %v, want an error naming %s line 1", res.Err, logFile)
	}
}

// Many goroutines of two providers on one directory (two tend processes)
// start and stop replicas at once: every change lands, none is lost.
func TestConcurrentChanges(t *testing.T) {
	dir := t.TempDir()
	ps := []*Provider{newTestProvider(t, dir, "ci"), newTestProvider(t, dir, "ci")}
	const servers, reps = 200, 3
	var wg sync.WaitGroup
	for i := range servers {
		wg.Go(func() {
			p := ps[i%2]
			d := desired(fmt.Sprintf("s%03d", i), "1.0.0", reps)
			for r := range reps + 1 {
				if res := p.StartReplica(context.Background(), providers.StartRequest{Desired: d, Replica: r}); res.Err != nil {
					t.Error(res.Err)
					return
				}
			}
			// Scale down by one: the extra replica goes.
			last := p.Observe(context.Background(), providers.ObserveRequest{ManagedBy: "tend", Server: d.Server.Name})
			if last.Err != nil || len(last.Instances) != reps+1 {
				t.Errorf("server %s: Observe %v, %d instances, want %d", d.Server.Name, last.Err, len(last.Instances), reps+1)
				return
			}
			if res := p.StopReplica(context.Background(), providers.StopRequest{Instance: last.Instances[reps]}); res.Err != nil {
				t.Error(res.Err)
			}
		})
	}
	wg.Wait()
	fresh := newTestProvider(t, dir, "ci")
	got := observe(t, fresh, "tend", "")
	if len(got) != servers*reps {
		t.Fatalf("after concurrent changes a fresh provider observes %d replicas, want %d", len(got), servers*reps)
	}
	for _, in := range got {
		if in.Replica >= reps {
			t.Errorf("replica %s/%d was stopped but is still recorded", in.Server, in.Replica)
		}
	}
}

// A state directory wiped while tend runs: the provider sees nothing, and
// records again from scratch.
func TestDirectoryRemoved(t *testing.T) {
	dir := t.TempDir()
	p := newTestProvider(t, dir, "ci")
	start(t, p, desired("a", "1.0.0", 1), 0)
	if err := os.RemoveAll(filepath.Join(dir, "providers")); err != nil {
		t.Fatal(err)
	}
	if n := names(observe(t, p, "tend", "")); n != "" {
		t.Errorf("after the directory was removed, Observe lists %q, want nothing", n)
	}
	start(t, p, desired("b", "1.0.0", 1), 0)
	if n := names(observe(t, newTestProvider(t, dir, "ci"), "tend", "")); n != "b/0@1.0.0" {
		t.Errorf("after recording again, a fresh provider observes %q, want b/0", n)
	}
}

func TestNewRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    *spec.Provider
		env  providers.Env
		want string
	}{
		{"no state dir", &spec.Provider{Type: Type, Name: "ci"}, providers.Env{}, "state directory"},
		{"other type", &spec.Provider{Type: "docker", Name: "ci"}, providers.Env{StateDir: "/x"}, "not a null provider"},
		{"path in the name", &spec.Provider{Type: Type, Name: "../x"}, providers.Env{StateDir: "/x"}, "not a provider name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.p, tc.env)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New: %v, want an error with %q", err, tc.want)
			}
		})
	}
}
