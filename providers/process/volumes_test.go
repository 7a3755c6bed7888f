package process

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tendhq/tend/providers"
	"github.com/tendhq/tend/spec"
)

// TestRemoveVolumes: RemoveVolumes refuses while the replica runs or is
// halted; once it is stopped, it deletes the replica's provider-managed
// volume (read-only directories in it included) and the server's
// directory, and leaves the volume with a source, the volume of another
// replica and that of another managed-by identity alone; a second call
// finds nothing to do.
func TestRemoveVolumes(t *testing.T) {
	root := tempRoot(t)
	p := newTestProvider(t, root)
	port := freePorts(t, 1)
	d := testDesired(t, "vols", port, "v1", nil)
	source := t.TempDir()
	if err := os.WriteFile(filepath.Join(source, "live.txt"), []byte("live data"), 0o644); err != nil {
		t.Fatal(err)
	}
	d.Server.Volumes = []*spec.Volume{{Name: "data", Path: "/data"}, {Name: "host", Path: "/host", Source: source}}
	inst := startTest(t, p, d, 0)
	ctx := context.Background()
	serverDir := filepath.Join(root, testManagedBy, "vols")
	vol := filepath.Join(serverDir, "volumes", "data-0")
	// What a replica may leave in its volume: a file, and a directory it
	// made read-only.
	if err := os.WriteFile(filepath.Join(vol, "notes.json"), []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	ro := filepath.Join(vol, "frozen")
	if err := os.MkdirAll(ro, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ro, "f"), []byte("x"), 0o400); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(ro, 0o500); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(ro, 0o700) })
	// Replica 1's volume, and the same server's volume of another tend.
	other := filepath.Join(serverDir, "volumes", "data-1")
	foreign := filepath.Join(root, "another-tend", "vols", "volumes", "data-0")
	for _, dir := range []string{other, foreign} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "keep"), []byte("keep"), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	err := p.RemoveVolumes(ctx, d, 0)
	if err == nil || !strings.Contains(err.Error(), "still exists") {
		t.Errorf("RemoveVolumes of a running replica: %v, want a refusal", err)
	}
	if err := p.Halt(ctx, inst, time.Second); err != nil {
		t.Fatal(err)
	}
	if err := p.RemoveVolumes(ctx, d, 0); err == nil || !strings.Contains(err.Error(), "still exists") {
		t.Errorf("RemoveVolumes of a halted replica: %v, want a refusal", err)
	}
	if _, err := os.Stat(filepath.Join(vol, "notes.json")); err != nil {
		t.Fatalf("a refused RemoveVolumes touched the volume: %v", err)
	}

	if r := p.StopReplica(ctx, providers.StopRequest{Instance: inst, Grace: time.Second}); r.Err != nil {
		t.Fatal(r.Err)
	}
	if _, err := os.Stat(vol); err != nil {
		t.Fatalf("StopReplica removed the volume (it keeps volumes): %v", err)
	}
	if err := p.RemoveVolumes(ctx, d, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(vol); !os.IsNotExist(err) {
		t.Errorf("after RemoveVolumes, %s is there (%v)", vol, err)
	}
	for _, f := range []string{filepath.Join(source, "live.txt"), filepath.Join(other, "keep"), filepath.Join(foreign, "keep")} {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("RemoveVolumes removed %s, which is not the replica's managed volume: %v", f, err)
		}
	}
	if err := p.RemoveVolumes(ctx, d, 0); err != nil {
		t.Errorf("RemoveVolumes of volumes already gone: %v", err)
	}

	// Replica 1's, the last: the server's directory goes with it.
	if err := p.RemoveVolumes(ctx, d, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(serverDir); !os.IsNotExist(err) {
		t.Errorf("after the last volume, %s is there (%v)", serverDir, err)
	}
	if _, err := os.Stat(filepath.Join(foreign, "keep")); err != nil {
		t.Errorf("the other tend's volume: %v", err)
	}
}
