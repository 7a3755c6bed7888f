package docker

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/volume"

	"github.com/tendhq/tend/providers"
	"github.com/tendhq/tend/providers/docker/dockertest"
	"github.com/tendhq/tend/spec"
)

// TestRemoveVolumes: the replica's named volume carries its replica label;
// RemoveVolumes refuses while the replica's container exists (running or
// halted) and while another container uses the volume, then removes it; it
// leaves alone the bind-mounted source, the volume of another replica, the
// volume of another managed-by identity, and a volume of the same name
// that is not tend's; a second call finds nothing to do.
func TestRemoveVolumes(t *testing.T) {
	p, managedBy := newTestProvider(t, "")
	buildImages(t, p, "1.0.0")
	cli := p.Client()
	ctx := ctxT(t)
	source := t.TempDir()
	live := filepath.Join(source, "live.txt")
	if err := os.WriteFile(live, []byte("live data"), 0o644); err != nil {
		t.Fatal(err)
	}
	port := dockertest.FreePorts(t, 1)
	s := testServer(t, "vols", "1.0.0", port)
	s.Volumes = []*spec.Volume{{Name: "data", Path: "/data"}, {Name: "host", Path: "/host", Source: source}}
	d := desiredOf(s, managedBy)
	res := p.StartReplica(ctx, providers.StartRequest{Desired: d, Replica: 0})
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	inst := res.Instance
	name := volumeName(managedBy, "vols", "data", 0)
	vol, err := cli.VolumeInspect(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if vol.Labels[providers.LabelReplica] != "0" || vol.Labels[providers.LabelServer] != "vols" || vol.Labels[providers.LabelManagedBy] != managedBy {
		t.Errorf("the volume's labels: %v", vol.Labels)
	}
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	tw.WriteHeader(&tar.Header{Name: "notes.json", Mode: 0o600, Size: 2, Typeflag: tar.TypeReg, ModTime: time.Now()})
	tw.Write([]byte("{}"))
	tw.Close()
	if err := p.CopyIn(ctx, inst, "/data", &tb); err != nil {
		t.Fatal(err)
	}

	// Volumes that are not this replica's: replica 1's, another tend's,
	// and one named as tend would name it but without tend's labels.
	mk := func(name string, labels map[string]string) {
		t.Helper()
		if _, err := cli.VolumeCreate(ctx, volume.CreateOptions{Name: name, Labels: labels}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cli.VolumeRemove(context.Background(), name, true) })
	}
	other := volumeName(managedBy, "vols", "data", 1)
	mk(other, map[string]string{providers.LabelManagedBy: managedBy, providers.LabelServer: "vols", providers.LabelReplica: "1"})
	anotherTend := "another-" + managedBy
	foreign := volumeName(anotherTend, "vols", "data", 0)
	mk(foreign, map[string]string{providers.LabelManagedBy: anotherTend, providers.LabelServer: "vols"})
	unlabelled := volumeName(managedBy, "not-tends", "data", 0)
	mk(unlabelled, nil)

	gone := func(name string) bool {
		t.Helper()
		_, err := cli.VolumeInspect(ctx, name)
		if err != nil && !cerrdefs.IsNotFound(err) {
			t.Fatal(err)
		}
		return cerrdefs.IsNotFound(err)
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
	if r := p.StopReplica(ctx, providers.StopRequest{Instance: inst, Grace: time.Second}); r.Err != nil {
		t.Fatal(r.Err)
	}
	if gone(name) {
		t.Fatal("StopReplica removed the volume (it keeps volumes)")
	}

	// A container that is not the replica's, with the volume mounted.
	c, err := cli.ContainerCreate(ctx, &container.Config{Image: testImage + ":1.0.0", Labels: map[string]string{"owner": "someone-else"}},
		&container.HostConfig{Mounts: []mount.Mount{{Type: mount.TypeVolume, Source: name, Target: "/mnt"}}}, nil, nil, "user-of-"+name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.ContainerRemove(context.Background(), c.ID, container.RemoveOptions{Force: true}) })
	if err := p.RemoveVolumes(ctx, d, 0); err == nil || !strings.Contains(err.Error(), "still used by container user-of-"+name) {
		t.Errorf("RemoveVolumes of a volume another container uses: %v, want a refusal", err)
	}
	if gone(name) {
		t.Fatal("a refused RemoveVolumes removed the volume")
	}
	if err := cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}

	if err := p.RemoveVolumes(ctx, d, 0); err != nil {
		t.Fatal(err)
	}
	if !gone(name) {
		t.Errorf("after RemoveVolumes, the volume %s is there", name)
	}
	for _, n := range []string{other, foreign, unlabelled} {
		if gone(n) {
			t.Errorf("RemoveVolumes removed %s, which is not the replica's", n)
		}
	}
	if _, err := os.Stat(live); err != nil {
		t.Errorf("the bind-mounted source: %v", err)
	}
	if err := p.RemoveVolumes(ctx, d, 0); err != nil {
		t.Errorf("RemoveVolumes of volumes already gone: %v", err)
	}

	// A volume of the replica's name that tend did not make is refused.
	nd := desiredOf(testServer(t, "not-tends", "1.0.0", port), managedBy)
	nd.Server.Volumes = []*spec.Volume{{Name: "data", Path: "/data"}}
	if err := p.RemoveVolumes(ctx, nd, 0); err == nil || !strings.Contains(err.Error(), "left alone") {
		t.Errorf("RemoveVolumes of a volume without tend's labels: %v, want a refusal", err)
	}
	if gone(unlabelled) {
		t.Error("RemoveVolumes removed a volume without tend's labels")
	}
}
