package docker_test

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/volume"

	"github.com/tendhq/tend/internal/notestest"
	"github.com/tendhq/tend/providers"
	"github.com/tendhq/tend/providers/docker"
	"github.com/tendhq/tend/providers/docker/dockertest"
	"github.com/tendhq/tend/reconcile"
	"github.com/tendhq/tend/reconcile/state"
	"github.com/tendhq/tend/spec"
)

const backupImage = "tend-test/notes-backup"

// backupRepo deploys mcp-notes (the image of dockertest, which keeps its
// notes in /data/notes.json) on two replicas with a backup block of its
// volume.
const backupRepo = `
variable "docker_host" {
  type = string
}

variable "port" {
  type = number
}

provider "docker" "local" {
  host         = var.docker_host
  pull_policy  = "never"
  stop_timeout = "2s"
}

server "notes" {
  provider = provider.docker.local
  version  = "1.0.0"
  image    = "` + backupImage + `:${version}"
  replicas = 2
  port     = var.port
  volume "data" {
    path = "/data"
  }
  check "health" {
    http {
      path = "/health"
    }
    interval = "300ms"
    timeout  = "300ms"
  }
  rollout {
    verify_for        = "1s"
    progress_deadline = "30s"
  }
  backup {
    schedule = "0 3 * * *"
    paths    = ["/data"]
  }
}
`

// TestEngineBackupRestore backs up and restores mcp-notes on the real
// Docker Engine through tend's engine, reading and writing the notes only
// through the server's MCP tools: two notes are backed up, deleted, one is
// written after the backup, and the restore brings back the two (on both
// replicas), with the restore in the history; a drill passes and leaves no
// container of notes-drill behind, nor its volume.
//
// Docker's CopyIn merges (see the package documentation), and this test
// shows what that means for mcp-notes: its notes are one file,
// /data/notes.json, which the restore overwrites, so the note written after
// the backup is gone like the deletions are undone; but a file the backup
// does not have (stray.txt, put into the volume after the backup) is still
// there after the restore.
func TestEngineBackupRestore(t *testing.T) {
	cli := dockertest.Engine(t)
	dockertest.Image(t, cli, backupImage+":1.0.0", dockertest.Build{Version: "1.0.0"})
	managedBy := "backup-" + dockertest.Key(t.Name()) + "-" + strconv.Itoa(os.Getpid())
	t.Cleanup(func() { dockertest.Cleanup(t, cli, managedBy) })
	port := dockertest.FreePorts(t, 2)
	repo := t.TempDir()
	if err := os.WriteFile(filepath.Join(repo, "main.hcl"), []byte(backupRepo), 0o644); err != nil {
		t.Fatal(err)
	}
	stateDir := t.TempDir()
	st, err := state.Open(filepath.Join(stateDir, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	opts := spec.Options{Strict: true, Vars: map[string]string{"docker_host": dockertest.Host(), "port": strconv.Itoa(port)}}
	reg := providers.NewRegistry()
	docker.Register(reg)
	var progress strings.Builder
	eng := &reconcile.Engine{
		Store: st, Registry: reg, ManagedBy: managedBy,
		ProvEnv:     providers.Env{StateDir: stateDir, ManagedBy: managedBy},
		Host:        reconcile.Host{Name: "docker-test"},
		LoadOptions: opts, Progress: &progress,
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("progress:\n%s", progress.String())
		}
	})
	src, _, diags := reconcile.LoadSource(repo, opts)
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	cfg := src.Config
	prov, err := reg.Get(cfg, "docker.local", eng.ProvEnv)
	if err != nil {
		t.Fatal(err)
	}
	dc := prov.(providers.DataCopier)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	observe := func(server string) []providers.Instance {
		t.Helper()
		res := prov.Observe(ctx, providers.ObserveRequest{ManagedBy: managedBy, Server: server})
		if res.Err != nil {
			t.Fatal(res.Err)
		}
		var out []providers.Instance
		for _, in := range res.Instances {
			if in.Server == server {
				out = append(out, in)
			}
		}
		providers.SortInstances(out)
		return out
	}
	// files lists the regular files of a replica's volume, through CopyOut.
	files := func(inst providers.Instance) []string {
		t.Helper()
		var buf bytes.Buffer
		if err := dc.CopyOut(ctx, inst, "/data", &buf); err != nil {
			t.Fatal(err)
		}
		var names []string
		tr := tar.NewReader(&buf)
		for {
			hdr, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if hdr.Typeflag == tar.TypeReg {
				names = append(names, hdr.Name)
			}
		}
		sort.Strings(names)
		return names
	}
	mcpURL := func(p int) string { return fmt.Sprintf("http://127.0.0.1:%d/mcp", p) }
	wantTitles := func(what, url string, want ...string) {
		t.Helper()
		if got := notestest.Titles(notestest.List(t, url)); !slices.Equal(got, want) {
			t.Errorf("%s: list_notes has %q, want %q", what, got, want)
		}
	}
	locked := func(op string) func() {
		t.Helper()
		release, err := eng.Lock(op)
		if err != nil {
			t.Fatal(err)
		}
		return release
	}

	_, res, err := eng.ApplySource(ctx, src, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Servers) != 1 || res.Servers[0].Outcome != reconcile.ResultVerified {
		t.Fatalf("create: %+v\n%s", res.Servers, progress.String())
	}

	// Two notes through replica 0, which the backup copies (the first
	// running replica).
	notestest.Add(t, mcpURL(port), "first", "kept by the backup")
	notestest.Add(t, mcpURL(port), "second", "also kept")
	release := locked("backup")
	b, err := eng.Backup(ctx, cfg, reconcile.BackupRequest{Server: "notes", Trigger: state.TriggerManual})
	release()
	if err != nil {
		t.Fatalf("backup: %v\n%s", err, progress.String())
	}
	if b.Outcome != state.BackupOK || b.Replica != 0 || b.Size == 0 {
		t.Fatalf("the backup: %+v", b)
	}

	// Deleted, one written after the backup, and a file the backup does
	// not have; replica 1 has no notes.
	if n := notestest.Clear(t, mcpURL(port)); n != 2 {
		t.Fatalf("deleted %d notes, want 2", n)
	}
	notestest.Add(t, mcpURL(port), "after the backup", "not in the backup")
	wantTitles("before the restore", mcpURL(port), "after the backup")
	wantTitles("replica 1 before the restore", mcpURL(port+1))
	insts := observe("notes")
	if len(insts) != 2 {
		t.Fatalf("observed %d replicas of notes, want 2", len(insts))
	}
	var stray bytes.Buffer
	tw := tar.NewWriter(&stray)
	tw.WriteHeader(&tar.Header{Name: "stray.txt", Mode: 0o644, Size: 5, Typeflag: tar.TypeReg, ModTime: time.Now()})
	tw.Write([]byte("stray"))
	tw.Close()
	if err := dc.CopyIn(ctx, insts[0], "/data", &stray); err != nil {
		t.Fatal(err)
	}

	// The restore: the two notes are back on both replicas, and the note
	// written since is gone (notes.json is overwritten); stray.txt stays
	// (CopyIn merges).
	release = locked("restore")
	r, err := eng.Restore(ctx, cfg, reconcile.RestoreRequest{Server: "notes"})
	release()
	if err != nil {
		t.Fatalf("restore: %v\n%s", err, progress.String())
	}
	if r.Outcome != reconcile.RestoreDone || r.Backup.ID != b.ID || r.PreRestore == nil {
		t.Fatalf("restore: %+v", r)
	}
	for i := range 2 {
		wantTitles(fmt.Sprintf("replica %d after the restore", i), mcpURL(port+i), "first", "second")
	}
	after := observe("notes")
	for _, in := range after {
		if in.State != providers.StateRunning || len(in.Drift) != 0 {
			t.Errorf("replica %d after the restore: %s (%s), drift %q", in.Replica, in.State, in.Message, in.Drift)
		}
		if in.ID != insts[in.Replica].ID {
			t.Errorf("replica %d after the restore is container %.12s, want the same %.12s (halted and resumed)", in.Replica, in.ID, insts[in.Replica].ID)
		}
	}
	if got := files(after[0]); !slices.Equal(got, []string{"notes.json", "stray.txt"}) {
		t.Errorf("replica 0's volume after the restore: %q, want notes.json and the stray.txt the merge keeps", got)
	}
	if got := files(after[1]); !slices.Equal(got, []string{"notes.json"}) {
		t.Errorf("replica 1's volume after the restore: %q, want notes.json", got)
	}
	hist, err := st.History("notes", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) == 0 {
		t.Fatal("notes has no history")
	}
	if h := hist[0]; h.ID != r.RevisionID || h.Trigger != "restore" || h.Outcome != state.OutcomeVerified {
		t.Errorf("the newest revision of notes: %+v, want the verified restore %d", h, r.RevisionID)
	}
	if p, err := eng.Plan(ctx, src); err != nil || p.HasChanges() {
		t.Errorf("the plan after the restore has changes: %v %+v", err, p)
	}

	// A drill of the manual backup (the newest good one is now the
	// pre-restore backup): notes-drill is started, restored, checked and
	// removed.
	release = locked("restore")
	d, err := eng.Restore(ctx, cfg, reconcile.RestoreRequest{Server: "notes", BackupID: b.ID, Drill: true})
	release()
	if err != nil || d.Outcome != reconcile.DrillPassed {
		t.Fatalf("drill: %+v %v\n%s", d, err, progress.String())
	}
	if _, passed, err := st.LatestDrills(); err != nil || passed["notes"] == nil || passed["notes"].BackupID != b.ID {
		t.Errorf("the drill in the store: %v %+v", err, passed["notes"])
	}
	drillOf := filters.NewArgs(filters.Arg("label", providers.LabelManagedBy+"="+managedBy), filters.Arg("label", providers.LabelServer+"=notes-drill"))
	left, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: drillOf})
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Errorf("after the drill, %d containers of notes-drill are left: %+v", len(left), left)
	}
	// The drill's volume goes with it (RemoveVolumes): no copy of the
	// notes stays, and the next drill cannot start on this one's files
	// (CopyIn merges).
	vols, err := cli.VolumeList(ctx, volume.ListOptions{Filters: drillOf})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vols.Volumes {
		t.Errorf("after the drill, the volume %s of notes-drill is left", v.Name)
	}
	if strings.Contains(progress.String(), "warning: removing the drill") {
		t.Errorf("the drill warned:\n%s", progress.String())
	}
	wantTitles("replica 0 after the drill", mcpURL(port), "first", "second")
}
