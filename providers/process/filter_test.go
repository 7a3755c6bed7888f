package process

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/tendhq/tend/providers"
)

// startWebAndAPI starts one replica each of servers web and api on a new
// provider, and returns its root, the provider and their desired states.
func startWebAndAPI(t *testing.T) (string, *Provider, *providers.Desired, *providers.Desired) {
	t.Helper()
	root := tempRoot(t)
	p := newTestProvider(t, root)
	ports := freePorts(t, 2)
	web := testDesired(t, "web", ports, "h1", nil)
	api := testDesired(t, "api", ports+1, "h1", nil)
	startTest(t, p, web, 0)
	startTest(t, p, api, 0)
	return root, p, web, api
}

// TestObserveFilterAndLostScan: Observe with a server reads that server's
// directory only, and looks through /proc for lost replicas only when the
// managed-by directory is new to it, gone, or another directory.
func TestObserveFilterAndLostScan(t *testing.T) {
	t.Parallel()
	_, p, web, _ := startWebAndAPI(t)
	managedBy := web.ManagedBy

	ctx := context.Background()
	all := p.Observe(ctx, providers.ObserveRequest{ManagedBy: managedBy})
	if all.Err != nil || len(all.Instances) != 2 {
		t.Fatalf("Observe all: %d instances, %v; want 2", len(all.Instances), all.Err)
	}
	one := p.Observe(ctx, providers.ObserveRequest{ManagedBy: managedBy, Server: "api"})
	if one.Err != nil || len(one.Instances) != 1 || one.Instances[0].Server != "api" {
		t.Fatalf("Observe api: %+v, %v; want api's replica only", one.Instances, one.Err)
	}
	if none := p.Observe(ctx, providers.ObserveRequest{ManagedBy: managedBy, Server: "nosuch"}); none.Err != nil || len(none.Instances) != 0 {
		t.Fatalf("Observe nosuch: %+v, %v", none.Instances, none.Err)
	}
	// The directory is where the first observe found it: no scan.
	if p.needLostScan(managedBy) {
		t.Fatal("a scan of /proc is due although nothing moved")
	}
	// Moved away and made anew (as a restored or deleted state directory
	// would be): the next observe scans again.
	base := filepath.Join(p.root, managedBy)
	if err := os.Rename(base, base+".old"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Rename(base+".old", base) })
	if !p.needLostScan(managedBy) {
		t.Fatal("no scan is due with the directory gone")
	}
	if err := os.MkdirAll(base, 0o700); err != nil {
		t.Fatal(err)
	}
	if !p.needLostScan(managedBy) {
		t.Fatal("no scan is due with another directory in its place")
	}
	if err := os.Remove(base); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(base+".old", base); err != nil {
		t.Fatal(err)
	}
}

// TestLostScanOfOneServerCoversAll: the first look through /proc, made for
// one server's observe, finds every server's lost replicas, so an observe
// of everything right after it still says what tend lost track of (a look
// for one server that found nothing once stood for all of them).
func TestLostScanOfOneServerCoversAll(t *testing.T) {
	t.Parallel()
	root, p, web, api := startWebAndAPI(t)
	st := statusOf(t, p, "api", 0)
	if st.SupervisorPID == 0 || st.ChildPID == 0 {
		t.Fatalf("api's status: %+v", st)
	}
	t.Cleanup(func() {
		if !pidGone(st.ChildPID) {
			signalGroup(st.ChildPID, syscall.SIGKILL)
		}
		killLeftovers(t, st.SupervisorPID)
	})
	// api's replica is lost: its directory goes while its supervisor runs.
	if err := os.RemoveAll(filepath.Join(p.root, api.ManagedBy, "api")); err != nil {
		t.Fatal(err)
	}

	// The next tend: a new provider, whose first observe is of web alone.
	p2 := newTestProvider(t, root)
	ctx := context.Background()
	if res := p2.Observe(ctx, providers.ObserveRequest{ManagedBy: web.ManagedBy, Server: "web"}); res.Err != nil || len(res.Instances) != 1 {
		t.Fatalf("Observe web: %+v, %v; want web's replica and no error (nothing of web is lost)", res.Instances, res.Err)
	}
	res := p2.Observe(ctx, providers.ObserveRequest{ManagedBy: web.ManagedBy})
	wantLost(t, "Observe of everything after an observe of web", res.Err, "api replica 0", fmt.Sprintf("kill %d", st.SupervisorPID))
	res = p2.Observe(ctx, providers.ObserveRequest{ManagedBy: web.ManagedBy, Server: "api"})
	wantLost(t, "Observe of api", res.Err, "api replica 0")

	// As the error says: SIGTERM to its supervisor stops it.
	if err := syscall.Kill(st.SupervisorPID, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() error {
		if !pidGone(st.SupervisorPID) || !pidGone(st.ChildPID) {
			return fmt.Errorf("supervisor %d or child %d still runs", st.SupervisorPID, st.ChildPID)
		}
		return nil
	})
}
