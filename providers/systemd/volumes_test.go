package systemd

import (
	"context"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tendhq/tend/providers"
	"github.com/tendhq/tend/spec"
)

// TestInsideRemoveVolumes: a replica running as nobody writes its volume;
// RemoveVolumes refuses while the replica runs or is halted, and once it
// is stopped deletes the volume, with what nobody left in it (a file of
// its own, a read-only directory, a link out of the volume, which is not
// followed), and leaves alone the volume with a source, the volume of
// another replica and that of another managed-by identity; a second call
// finds nothing to do, and the last volume takes the server's directory.
func TestInsideRemoveVolumes(t *testing.T) {
	inside(t)
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
	uid, _ := strconv.Atoi(nobody.Uid)
	gid, _ := strconv.Atoi(nobody.Gid)
	source := t.TempDir()
	live := filepath.Join(source, "live.txt")
	if err := os.WriteFile(live, []byte("live data"), 0o644); err != nil {
		t.Fatal(err)
	}
	outside := t.TempDir()
	outsideFi, err := os.Stat(outside)
	if err != nil {
		t.Fatal(err)
	}
	precious := filepath.Join(outside, "precious")
	if err := os.WriteFile(precious, []byte("not the volume's"), 0o600); err != nil {
		t.Fatal(err)
	}
	port := freePorts(t, 1)
	s := testServer(t, "vols", "1.0.0", port)
	s.User = "nobody"
	s.Volumes = []*spec.Volume{{Name: "data", Path: "/data"}, {Name: "host", Path: "/host", Source: source}}
	d := desiredOf(s, managedBy)
	inst := start(t, p, d, 0)
	waitHealth(t, port, "1.0.0")
	ctx := ctxT(t)

	vol := p.volumeDir(managedBy, "vols", "data", 0)
	if got, err := httpGet(port, "/write?path="+filepath.Join(vol, "notes.json")); err != nil || got != "ok" {
		t.Fatalf("the replica writes its volume: %q %v", got, err)
	}
	// As nobody would leave them: a read-only directory with a file, and a
	// link out of the volume.
	ro := filepath.Join(vol, "frozen")
	if err := os.Mkdir(ro, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ro, "f"), []byte("x"), 0o400); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(vol, "out")); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{filepath.Join(ro, "f"), ro, filepath.Join(vol, "out")} {
		if err := os.Lchown(f, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(ro, 0o500); err != nil {
		t.Fatal(err)
	}
	// Replica 1's volume, and the same server's volume of another tend.
	other := p.volumeDir(managedBy, "vols", "data", 1)
	foreign := p.volumeDir("another-tend", "vols", "data", 0)
	for _, dir := range []string{other, foreign} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "keep"), []byte("keep"), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	if err := p.RemoveVolumes(ctx, d, 0); err == nil || !strings.Contains(err.Error(), "still exists") {
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
	for _, f := range []string{live, precious, filepath.Join(other, "keep"), filepath.Join(foreign, "keep")} {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("RemoveVolumes removed %s, which is not the replica's managed volume: %v", f, err)
		}
	}
	if fi, err := os.Stat(outside); err != nil || fi.Mode() != outsideFi.Mode() || fi.Sys().(*syscall.Stat_t).Uid != 0 {
		t.Errorf("the directory the link pointed to: %v (%v), want it as it was (%v, root's)", fi.Mode(), err, outsideFi.Mode())
	}
	if err := p.RemoveVolumes(ctx, d, 0); err != nil {
		t.Errorf("RemoveVolumes of volumes already gone: %v", err)
	}

	// Replica 1's, the last: the server's directory goes with it.
	if err := p.RemoveVolumes(context.Background(), d, 1); err != nil {
		t.Fatal(err)
	}
	if serverDir := filepath.Dir(p.instanceDir(managedBy, "vols", 0)); exists(serverDir) {
		t.Errorf("after the last volume, %s is there", serverDir)
	}
	if _, err := os.Stat(filepath.Join(foreign, "keep")); err != nil {
		t.Errorf("the other tend's volume: %v", err)
	}
}
