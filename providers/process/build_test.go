package process

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tendhq/tend/providers"
	"github.com/tendhq/tend/providers/internal/hostfs"
)

// TestLockedBuildChecked: a replica whose server carries the locked
// build's sha256 starts only when the program has that digest; a build
// replaced under its version is refused, naming both digests, and nothing
// starts.
func TestLockedBuildChecked(t *testing.T) {
	t.Parallel()
	p := newTestProvider(t, tempRoot(t))
	exe := testExe(t)
	b, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	good := "sha256:" + hex.EncodeToString(sum[:])

	d := testDesired(t, "locked", freePorts(t, 1), "h1", nil)
	d.Server.BuildDigest = good
	startTest(t, p, d, 0)
	dir, err := p.instanceDir(testManagedBy, "locked", 0)
	if err != nil {
		t.Fatal(err)
	}
	var ls launchSpec
	if err := hostfs.ReadJSON(filepath.Join(dir, specFile), &ls); err != nil || ls.ProgramSHA256 != good {
		t.Fatalf("the supervisor is not given the locked digest: %q %v", ls.ProgramSHA256, err)
	}

	bad := "sha256:" + strings.Repeat("ab", 32)
	d2 := testDesired(t, "moved", freePorts(t, 1), "h2", nil)
	d2.Server.BuildDigest = bad
	res := p.StartReplica(context.Background(), providers.StartRequest{Desired: d2})
	if res.Err == nil || !strings.Contains(res.Err.Error(), "has "+good+", and the lock file records "+bad) {
		t.Fatalf("a build with another digest: %v", res.Err)
	}
	for _, in := range observe(t, p) {
		if in.Server == "moved" {
			t.Fatalf("the refused replica runs: %+v", in)
		}
	}
}
