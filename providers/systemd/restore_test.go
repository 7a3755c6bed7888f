package systemd_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tendhq/tend/internal/notestest"
	"github.com/tendhq/tend/internal/testports"
	"github.com/tendhq/tend/providers"
	"github.com/tendhq/tend/providers/systemd"
	"github.com/tendhq/tend/providers/systemd/systemdtest"
	"github.com/tendhq/tend/reconcile"
	"github.com/tendhq/tend/reconcile/state"
	"github.com/tendhq/tend/spec"
)

// backupRepo deploys mcp-notes with a backup block of its volume: notes on
// two replicas as root, and notes-nobody on one replica as nobody.
const backupRepo = `
variable "bin_dir" {
  type = string
}

variable "port" {
  type = number
}

provider "systemd" "local" {
  artifact_dir = "/opt/tend-e2e"
}

server "notes" {
  provider = provider.systemd.local
  version  = "1.0.0"
  command  = ["${var.bin_dir}/mcp-notes-${version}"]
  replicas = 2
  port     = var.port
  env = {
    NOTES_DATA_DIR = "$(TEND_VOLUME_DATA)"
  }
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

server "notes-nobody" {
  provider = provider.systemd.local
  version  = "1.0.0"
  command  = ["${var.bin_dir}/mcp-notes-${version}"]
  user     = "nobody"
  port     = var.port + 2
  env = {
    NOTES_DATA_DIR = "$(TEND_VOLUME_DATA)"
  }
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

// TestInsideBackupRestore backs up and restores mcp-notes on the real
// systemd through tend's engine, reading and writing the notes only through
// the server's MCP tools: two notes are backed up, deleted, one written
// after the backup, and the restore brings back the two (on both replicas)
// and drops the later one; the restore is a revision in the history; the
// mode of notes.json in the volume is the backed-up one; a drill passes and
// leaves no unit of notes-drill behind, nor its volume. The data of a
// replica running as nobody comes back owned by nobody, which goes on
// writing it, and its drill removes its volume, nobody's, too.
func TestInsideBackupRestore(t *testing.T) {
	systemdtest.SkipUnlessInside(t)
	bin := os.Getenv(systemdtest.NotesDirEnv)
	if bin == "" {
		t.Fatalf("%s is not set", systemdtest.NotesDirEnv)
	}
	port := testports.Consecutive(t, 3)
	repo := t.TempDir()
	if err := os.WriteFile(filepath.Join(repo, "main.hcl"), []byte(backupRepo), 0o644); err != nil {
		t.Fatal(err)
	}
	stateDir := t.TempDir()
	// nobody must reach its volume in the state directory (o+x).
	for d := stateDir; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	st, err := state.Open(filepath.Join(stateDir, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	managedBy := "backup-" + strconv.Itoa(os.Getpid())
	opts := spec.Options{Strict: true, Vars: map[string]string{"bin_dir": bin, "port": strconv.Itoa(port)}}
	reg := providers.NewRegistry()
	systemd.Register(reg)
	var progress strings.Builder
	eng := &reconcile.Engine{
		Store: st, Registry: reg, ManagedBy: managedBy,
		ProvEnv:     providers.Env{StateDir: stateDir, ManagedBy: managedBy},
		Host:        reconcile.Host{Name: "systemd-test"},
		LoadOptions: opts, Progress: &progress,
	}
	src, _, diags := reconcile.LoadSource(repo, opts)
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	cfg := src.Config
	prov, err := reg.Get(cfg, "systemd.local", eng.ProvEnv)
	if err != nil {
		t.Fatal(err)
	}
	observe := func(server string) []providers.Instance {
		t.Helper()
		res := prov.Observe(context.Background(), providers.ObserveRequest{ManagedBy: managedBy, Server: server})
		if res.Err != nil {
			t.Fatal(res.Err)
		}
		var out []providers.Instance
		for _, in := range res.Instances {
			if in.Server == server {
				out = append(out, in)
			}
		}
		return out
	}
	t.Cleanup(func() {
		res := prov.Observe(context.Background(), providers.ObserveRequest{ManagedBy: managedBy})
		for _, in := range res.Instances {
			prov.StopReplica(context.Background(), providers.StopRequest{Instance: in, Grace: time.Second})
		}
		if t.Failed() {
			t.Logf("progress:\n%s", progress.String())
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	backupNow := func(server string) *state.Backup {
		t.Helper()
		release, err := eng.Lock("backup")
		if err != nil {
			t.Fatal(err)
		}
		defer release()
		b, err := eng.Backup(ctx, cfg, reconcile.BackupRequest{Server: server, Trigger: state.TriggerManual})
		if err != nil {
			t.Fatalf("backup of %s: %v\n%s", server, err, progress.String())
		}
		return b
	}
	restore := func(server, backupID string, drill bool) *reconcile.RestoreResult {
		t.Helper()
		release, err := eng.Lock("restore")
		if err != nil {
			t.Fatal(err)
		}
		defer release()
		res, err := eng.Restore(ctx, cfg, reconcile.RestoreRequest{Server: server, BackupID: backupID, Drill: drill})
		if err != nil {
			t.Fatalf("restore of %s (drill %v): %v\n%s", server, drill, err, progress.String())
		}
		return res
	}
	mcpURL := func(p int) string { return fmt.Sprintf("http://127.0.0.1:%d/mcp", p) }
	// volume is the host directory of a replica's volume "data"
	// (STATE/providers/systemd.NAME/M/S/volumes/data-i; the names here
	// need no encoding).
	volume := func(server string, replica int) string {
		return filepath.Join(stateDir, "providers", "systemd.local", managedBy, server, "volumes", "data-"+strconv.Itoa(replica))
	}
	wantTitles := func(what, url string, want ...string) {
		t.Helper()
		if got := notestest.Titles(notestest.List(t, url)); !slices.Equal(got, want) {
			t.Errorf("%s: list_notes has %q, want %q", what, got, want)
		}
	}

	_, res, err := eng.ApplySource(ctx, src, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range res.Servers {
		if s.Outcome != reconcile.ResultVerified {
			t.Fatalf("create %s: %s %s\n%s", s.Server, s.Outcome, s.Message, progress.String())
		}
	}

	// Two notes through replica 0, backed up from it (the first running
	// replica); notes.json given a mode of its own first, which mcp-notes
	// (0644 on every write) would not give it.
	notestest.Add(t, mcpURL(port), "first", "kept by the backup")
	notestest.Add(t, mcpURL(port), "second", "also kept")
	notesFile := filepath.Join(volume("notes", 0), "notes.json")
	if err := os.Chmod(notesFile, 0o640); err != nil {
		t.Fatal(err)
	}
	b := backupNow("notes")
	if b.Outcome != state.BackupOK || b.Replica != 0 || b.Size == 0 {
		t.Fatalf("the backup: %+v", b)
	}

	// Deleted, and one written after the backup; replica 1 has none.
	if n := notestest.Clear(t, mcpURL(port)); n != 2 {
		t.Fatalf("deleted %d notes, want 2", n)
	}
	notestest.Add(t, mcpURL(port), "after the backup", "not in the backup")
	wantTitles("before the restore", mcpURL(port), "after the backup")
	wantTitles("replica 1 before the restore", mcpURL(port+1))
	if fi, err := os.Stat(notesFile); err != nil || fi.Mode().Perm() != 0o644 {
		t.Fatalf("notes.json rewritten by mcp-notes: %v %v, want 0644", fi.Mode(), err)
	}

	// The restore: the two notes are back on both replicas, the later one
	// is gone, and the file has its backed-up mode.
	r := restore("notes", "", false)
	if r.Outcome != reconcile.RestoreDone || r.Backup.ID != b.ID || r.PreRestore == nil {
		t.Fatalf("restore: %+v", r)
	}
	for i := range 2 {
		wantTitles(fmt.Sprintf("replica %d after the restore", i), mcpURL(port+i), "first", "second")
	}
	if fi, err := os.Stat(notesFile); err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("notes.json after the restore: mode %v (%v), want the backed-up 0640", fi.Mode(), err)
	}
	for _, in := range observe("notes") {
		if in.State != providers.StateRunning || len(in.Drift) != 0 {
			t.Errorf("replica %d after the restore: %s (%s), drift %q", in.Replica, in.State, in.Message, in.Drift)
		}
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
	// removed; the live replicas keep serving their notes.
	d := restore("notes", b.ID, true)
	if d.Outcome != reconcile.DrillPassed || d.Backup.ID != b.ID {
		t.Fatalf("drill: %+v", d)
	}
	if _, passed, err := st.LatestDrills(); err != nil || passed["notes"] == nil || passed["notes"].BackupID != b.ID {
		t.Errorf("the drill in the store: %v %+v", err, passed["notes"])
	}
	if left := observe("notes-drill"); len(left) != 0 {
		t.Errorf("after the drill, Observe lists notes-drill: %+v", left)
	}
	unit := "tend." + managedBy + ".notes-drill.0.service"
	if _, err := os.Stat(filepath.Join("/etc/systemd/system", unit)); !os.IsNotExist(err) {
		t.Errorf("after the drill, the unit file of %s is there (%v)", unit, err)
	}
	out, err := exec.Command("systemctl", "show", "-p", "LoadState,ActiveState", unit).Output()
	if err != nil || !strings.Contains(string(out), "LoadState=not-found") || !strings.Contains(string(out), "ActiveState=inactive") {
		t.Errorf("after the drill, systemctl show %s: %s %v", unit, out, err)
	}
	// The drill's volume, with its plain copy of the notes, goes with it
	// (RemoveVolumes), and so does notes-drill's directory.
	drillDir := filepath.Dir(filepath.Dir(volume("notes-drill", 0)))
	for _, p := range []string{volume("notes-drill", 0), drillDir} {
		if _, err := os.Lstat(p); !os.IsNotExist(err) {
			t.Errorf("after the drill, %s is there (%v)", p, err)
		}
	}
	if strings.Contains(progress.String(), "warning: removing the drill") {
		t.Errorf("the drill warned:\n%s", progress.String())
	}
	for _, in := range observe("notes") {
		if in.State != providers.StateRunning {
			t.Errorf("replica %d after the drill: %s (%s)", in.Replica, in.State, in.Message)
		}
	}
	wantTitles("replica 0 after the drill", mcpURL(port), "first", "second")

	// As nobody: the restored data is nobody's, and it goes on writing.
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(nobody.Uid)
	asNobody := mcpURL(port + 2)
	notestest.Add(t, asNobody, "nobody's", "kept by the backup")
	backupNow("notes-nobody")
	notestest.Clear(t, asNobody)
	notestest.Add(t, asNobody, "nobody's later", "not in the backup")
	if r := restore("notes-nobody", "", false); r.Outcome != reconcile.RestoreDone {
		t.Fatalf("restore of notes-nobody: %+v", r)
	}
	wantTitles("notes-nobody after the restore", asNobody, "nobody's")
	for _, p := range []string{volume("notes-nobody", 0), filepath.Join(volume("notes-nobody", 0), "notes.json")} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st := fi.Sys().(*syscall.Stat_t); int(st.Uid) != uid {
			t.Errorf("%s after the restore is owned by uid %d, want nobody (%d)", p, st.Uid, uid)
		}
	}
	notestest.Add(t, asNobody, "written after the restore", "")
	wantTitles("notes-nobody writing after the restore", asNobody, "nobody's", "written after the restore")

	// A drill of notes-nobody: its volume, nobody's, goes too.
	if d := restore("notes-nobody", "", true); d.Outcome != reconcile.DrillPassed {
		t.Fatalf("drill of notes-nobody: %+v", d)
	}
	if _, err := os.Lstat(volume("notes-nobody-drill", 0)); !os.IsNotExist(err) {
		t.Errorf("after the drill of notes-nobody, its volume %s is there (%v)", volume("notes-nobody-drill", 0), err)
	}
	if strings.Contains(progress.String(), "warning: removing the drill") {
		t.Errorf("the drill of notes-nobody warned:\n%s", progress.String())
	}
}
