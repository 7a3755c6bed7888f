package process

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tendhq/tend/providers"
	"github.com/tendhq/tend/spec"
)

func wantLost(t *testing.T, what string, err error, wants ...string) {
	t.Helper()
	if !errors.Is(err, ErrLost) {
		t.Errorf("%s: err = %v, want ErrLost", what, err)
		return
	}
	for _, w := range wants {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%s: error %q does not mention %q", what, err, w)
		}
	}
}

// TestStateDirRemoved: tend's state directory, which holds the instance
// directories, is removed under a running replica. The replica keeps
// running and answering; Observe, StartReplica and StopReplica (and a new
// provider, as the next tend) say that tend lost track of it, naming the
// removed directory and how to stop it; SIGTERM to its supervisor, as the
// error says, stops it.
func TestStateDirRemoved(t *testing.T) {
	stateDir := filepath.Join(t.TempDir(), "state")
	newProvider := func() *Provider {
		p, err := New(&spec.Provider{Type: "process", Name: "test", Process: &spec.ProcessSettings{StopTimeout: 2 * time.Second}},
			providers.Env{StateDir: stateDir, ManagedBy: testManagedBy})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	p := newProvider()
	port := freePorts(t, 1)
	d := testDesired(t, "web", port, "h1", nil)
	inst := startTest(t, p, d, 0)
	eventually(t, 5*time.Second, func() error { _, err := httpGet(port, "/health"); return err })
	st := statusOf(t, p, "web", 0)
	sup, child := st.SupervisorPID, st.ChildPID
	if sup == 0 || child == 0 {
		t.Fatalf("status: %+v", st)
	}
	// Whatever happens below, nothing is left running.
	t.Cleanup(func() {
		if !pidGone(child) {
			signalGroup(child, syscall.SIGKILL)
		}
		killLeftovers(t, sup)
	})

	if err := os.RemoveAll(stateDir); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2500 * time.Millisecond) // the supervisor looks around every second
	got, err := httpGet(port, "/pid")
	if err != nil || got != strconv.Itoa(child) {
		t.Fatalf("after the state directory was removed: GET /pid = %q, %v; want %d still answering", got, err, child)
	}
	if pidGone(sup) {
		t.Fatal("the supervisor exited")
	}

	who := fmt.Sprintf("web replica 0 (pid %d, supervisor pid %d)", child, sup)
	how := fmt.Sprintf("kill %d", sup)
	ctx := context.Background()
	res := p.Observe(ctx, providers.ObserveRequest{ManagedBy: testManagedBy})
	wantLost(t, "Observe", res.Err, "the state directory "+stateDir+" was removed while 1 replica ran", "it keeps running, but tend lost track of it", who, how)
	t.Log(res.Err)
	wantLost(t, "Observe of the server", p.Observe(ctx, providers.ObserveRequest{ManagedBy: testManagedBy, Server: "web"}).Err, who)
	if err := p.Observe(ctx, providers.ObserveRequest{ManagedBy: testManagedBy, Server: "other"}).Err; err != nil {
		t.Errorf("Observe of another server: %v", err)
	}

	// Nothing is started beside it, nothing is made again.
	sr := p.StartReplica(ctx, providers.StartRequest{Desired: d, Replica: 0})
	wantLost(t, "StartReplica", sr.Err, "the state directory "+stateDir+" was removed while tend ran")
	t.Log(sr.Err)
	if _, err := os.Stat(stateDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("StartReplica made the state directory again: %v", err)
	}
	// Stopping what tend cannot find is not reported done.
	wantLost(t, "StopReplica", p.StopReplica(ctx, providers.StopRequest{Instance: inst, Grace: time.Second}).Err, how)

	// The next tend: a new provider, and the state directory made again.
	p2 := newProvider()
	if err := os.MkdirAll(p2.Root(), 0o700); err != nil {
		t.Fatal(err)
	}
	wantLost(t, "Observe by the next tend", p2.Observe(ctx, providers.ObserveRequest{ManagedBy: testManagedBy}).Err, who, how)
	sr = p2.StartReplica(ctx, providers.StartRequest{Desired: d, Replica: 0})
	wantLost(t, "StartReplica by the next tend", sr.Err, who)
	if got, _ := httpGet(port, "/pid"); got != strconv.Itoa(child) {
		t.Errorf("GET /pid = %q, want the lost replica %d", got, child)
	}

	// As the error says: SIGTERM to the supervisor stops the replica.
	if err := syscall.Kill(sup, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() error {
		if !pidGone(sup) || !pidGone(child) {
			return fmt.Errorf("supervisor %d or child %d still runs", sup, child)
		}
		return nil
	})
	res = p2.Observe(ctx, providers.ObserveRequest{ManagedBy: testManagedBy})
	if res.Err != nil || len(res.Instances) != 0 {
		t.Errorf("after the stop: %v, %v", res.Instances, res.Err)
	}
}

// A replica that is not running while its directory is removed (between
// restarts) cannot be started again without its files: its supervisor
// exits rather than wait forever.
func TestInstanceDirRemovedBetweenRestarts(t *testing.T) {
	p := newTestProvider(t, tempRoot(t))
	port := freePorts(t, 1)
	d := testDesired(t, "crashy", port, "h1", map[string]spec.Value{"CRASH_AFTER": spec.Plain("0s")})
	startTest(t, p, d, 0)
	dir, _ := p.instanceDir(testManagedBy, "crashy", 0)
	var sup int
	eventually(t, 5*time.Second, func() error {
		st := statusOf(t, p, "crashy", 0)
		if sup = st.SupervisorPID; sup == 0 || st.LastExitCode == nil {
			return fmt.Errorf("no exit yet: %+v", st)
		}
		return nil
	})
	t.Cleanup(func() { killLeftovers(t, sup) })
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	eventually(t, 40*time.Second, func() error {
		if !pidGone(sup) {
			return fmt.Errorf("supervisor %d still runs", sup)
		}
		return nil
	})
}

// BenchmarkLostScan measures what looking for lost replicas adds to every
// Observe: a pass over /proc (the processes of this user are read).
func BenchmarkLostScan(b *testing.B) {
	p, err := New(&spec.Provider{Type: "process", Name: "bench", Process: &spec.ProcessSettings{WorkDir: b.TempDir()}},
		providers.Env{ManagedBy: testManagedBy})
	if err != nil {
		b.Fatal(err)
	}
	entries, _ := os.ReadDir("/proc")
	for b.Loop() {
		if lost := p.lostReplicas(testManagedBy, ""); len(lost) != 0 {
			b.Fatalf("lost: %v", lost)
		}
	}
	b.ReportMetric(float64(len(entries)), "proc-entries")
}
