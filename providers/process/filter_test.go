package process

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/tendhq/tend/providers"
)

// TestObserveFilterAndLostScan: Observe with a server reads that server's
// directory only, and looks through /proc for lost replicas only when the
// managed-by directory is new to it, gone, or another directory.
func TestObserveFilterAndLostScan(t *testing.T) {
	t.Parallel()
	root := tempRoot(t)
	p := newTestProvider(t, root)
	ports := freePorts(t, 2)
	web := testDesired(t, "web", ports, "h1", nil)
	api := testDesired(t, "api", ports+1, "h1", nil)
	startTest(t, p, web, 0)
	startTest(t, p, api, 0)
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
