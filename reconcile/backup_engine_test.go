package reconcile

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"filippo.io/age"
	"github.com/sirupsen/logrus"
	"github.com/tendhq/tend/providers"
	"github.com/tendhq/tend/providers/memory"
	"github.com/tendhq/tend/reconcile/state"
	"github.com/tendhq/tend/spec"
)

// backupFleet is one server "db" of two replicas with a volume at /data
// that its backup block copies. SERVER_EXTRA, ROLLOUT_EXTRA and
// BACKUP_EXTRA are replaced by a test's additions to those blocks.
const backupFleet = `
provider "process" "mem" {}

variable "v" {
  default = "1.0.0"
}

server "db" {
  version  = var.v
  command  = ["./db"]
  replicas = 2
  port     = 5432
  volume "data" {
    path = "/data"
  }
  SERVER_EXTRA
  rollout {
    verify_for        = "0s"
    progress_deadline = "2s"
    ROLLOUT_EXTRA
  }
  backup {
    schedule = "0 3 * * *"
    paths    = ["/data"]
    BACKUP_EXTRA
  }
}
`

// backupHarness is the engine harness with a state directory (the default
// backup destination is STATE_DIR/backups), secrets of its own, and the
// progress and log output kept.
type backupHarness struct {
	*harness
	stateDir string
	secrets  map[string]string // NAME → value, as TEND_SECRET_NAME
	progress *lockedBuffer
	logs     *lockedBuffer
}

// lockedBuffer is a bytes.Buffer safe for the engine's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type fleetParts struct{ extra, rollout, backup string }

func newBackupHarness(t *testing.T, parts fleetParts) *backupHarness {
	t.Helper()
	h := &backupHarness{harness: newHarness(t), stateDir: t.TempDir(), secrets: map[string]string{}, progress: &lockedBuffer{}, logs: &lockedBuffer{}}
	h.writeFleet(parts)
	h.eng.ProvEnv = providers.Env{StateDir: h.stateDir, ManagedBy: "test"}
	h.eng.Progress = h.progress
	log := logrus.New()
	log.SetOutput(h.logs)
	log.SetLevel(logrus.DebugLevel)
	h.eng.Log = log
	return h
}

func (h *backupHarness) writeFleet(parts fleetParts) {
	h.t.Helper()
	src := strings.NewReplacer("SERVER_EXTRA", parts.extra, "ROLLOUT_EXTRA", parts.rollout, "BACKUP_EXTRA", parts.backup).Replace(backupFleet)
	if err := os.WriteFile(filepath.Join(h.dir, "main.hcl"), []byte(src), 0o644); err != nil {
		h.t.Fatal(err)
	}
}

func (h *backupHarness) opts() spec.Options {
	environ := map[string]string{}
	for k, v := range h.secrets {
		environ["TEND_SECRET_"+strings.ToUpper(k)] = v
	}
	return spec.Options{
		Strict: true, Vars: h.vars,
		Environ: func(k string) (string, bool) { v, ok := environ[k]; return v, ok },
	}
}

func (h *backupHarness) source() *Source {
	h.t.Helper()
	src, _, diags := LoadSource(h.dir, h.opts())
	if diags.HasErrors() {
		h.t.Fatal(diags.Error())
	}
	return src
}

func (h *backupHarness) apply() *ApplyResult {
	h.t.Helper()
	h.eng.LoadOptions = h.opts()
	_, res, err := h.eng.ApplySource(context.Background(), h.source(), nil)
	if err != nil {
		h.t.Fatal(err)
	}
	return res
}

// locked runs fn under the apply lock, as the CLI and the daemon do.
func (h *backupHarness) locked(op string, fn func()) {
	h.t.Helper()
	release, err := h.eng.Lock(op)
	if err != nil {
		h.t.Fatal(err)
	}
	defer release()
	fn()
}

func (h *backupHarness) backup(trigger string) *state.Backup {
	h.t.Helper()
	var b *state.Backup
	var err error
	h.locked("backup", func() {
		b, err = h.eng.Backup(context.Background(), h.source().Config, BackupRequest{Server: "db", Trigger: trigger})
	})
	if err != nil {
		h.t.Fatalf("backup: %v", err)
	}
	return b
}

func (h *backupHarness) restore(id string) (*RestoreResult, error) {
	h.t.Helper()
	var res *RestoreResult
	var err error
	h.eng.LoadOptions = h.opts()
	h.locked("restore", func() {
		res, err = h.eng.Restore(context.Background(), h.source().Config, RestoreRequest{Server: "db", BackupID: id})
	})
	return res, err
}

func (h *backupHarness) rollback(data string) (*state.Revision, error) {
	h.t.Helper()
	var target *state.Revision
	var err error
	h.eng.LoadOptions = h.opts()
	h.locked("rollback", func() {
		target, _, err = h.eng.Rollback(context.Background(), h.dir, "db", 0, data)
	})
	return target, err
}

// setData writes /data/state of every replica of db.
func (h *backupHarness) setData(v string) {
	for r := 0; r < 2; r++ {
		h.mem.SetFile("db", r, "/data", "state", []byte(v))
	}
}

// wantData checks /data/state of every replica of db.
func (h *backupHarness) wantData(v string) {
	h.t.Helper()
	for r := 0; r < 2; r++ {
		got, ok := h.mem.File("db", r, "/data", "state")
		if !ok || string(got) != v {
			h.t.Errorf("replica %d: /data/state is %q (present %v), want %q", r, got, ok, v)
		}
	}
}

// wantVersion checks the version every replica of db runs, and that they
// run.
func (h *backupHarness) wantVersion(v string) {
	h.t.Helper()
	obs := h.mem.Observe(context.Background(), providers.ObserveRequest{ManagedBy: "test", Server: "db"})
	if len(obs.Instances) != 2 {
		h.t.Fatalf("db has %d replicas: %+v", len(obs.Instances), obs.Instances)
	}
	for _, in := range obs.Instances {
		if in.Version != v || in.State != providers.StateRunning {
			h.t.Errorf("replica %d runs %s (%s), want %s running", in.Replica, in.Version, in.State, v)
		}
	}
}

func (h *backupHarness) goodBackups() []state.Backup {
	h.t.Helper()
	rows, err := h.eng.Store.Backups("db", 0)
	if err != nil {
		h.t.Fatal(err)
	}
	var out []state.Backup
	for _, b := range rows {
		if b.Outcome == state.BackupOK {
			out = append(out, b)
		}
	}
	return out
}

// destFiles lists the objects under STATE_DIR/backups/db.
func (h *backupHarness) destFiles() []string {
	h.t.Helper()
	entries, err := os.ReadDir(filepath.Join(h.stateDir, "backups", "db"))
	if err != nil {
		h.t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	sort.Strings(out)
	return out
}

func haltsOf(mem *memory.Provider, server string) []string {
	var out []string
	for _, h := range mem.Halts {
		if strings.HasPrefix(h, server+"/") {
			out = append(out, h)
		}
	}
	return out
}

func TestBackupAndRestore(t *testing.T) {
	h := newBackupHarness(t, fleetParts{})
	h.apply()
	h.mem.SetFile("db", 0, "/data", "state", []byte("v1"))
	h.mem.SetFile("db", 1, "/data", "state", []byte("v1 on replica 1"))

	b := h.backup(state.TriggerManual)
	row, err := h.eng.Store.GetBackup(b.ID)
	if err != nil {
		t.Fatal(err)
	}
	if row.Outcome != state.BackupOK || row.Replica != 0 || row.Version != "1.0.0" || row.Size == 0 || row.SHA256 == "" {
		t.Fatalf("catalog row: %+v", row)
	}
	if want := "file://" + filepath.ToSlash(filepath.Join(h.stateDir, "backups")); row.Destination != want {
		t.Errorf("destination %s, want %s", row.Destination, want)
	}
	for _, name := range []string{row.Archive, "db/" + b.ID + ".json"} {
		if _, err := os.Stat(filepath.Join(h.stateDir, "backups", filepath.FromSlash(name))); err != nil {
			t.Errorf("the destination lacks %s: %v", name, err)
		}
	}
	var m struct {
		ID     string `json:"id"`
		SHA256 string `json:"sha256"`
	}
	raw, _ := os.ReadFile(filepath.Join(h.stateDir, "backups", "db", b.ID+".json"))
	if err := json.Unmarshal(raw, &m); err != nil || m.ID != b.ID || m.SHA256 != row.SHA256 {
		t.Errorf("manifest: %s (%v)", raw, err)
	}

	h.setData("v2")
	res, err := h.restore(b.ID)
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
	if res.Outcome != RestoreDone {
		t.Fatalf("restore: %+v", res)
	}
	h.wantData("v1") // replica 0's data, in every replica
	h.wantVersion("1.0.0")
	if got := strings.Join(haltsOf(h.mem, "db"), ","); got != "db/0,db/1" {
		t.Errorf("halts: %s", got)
	}

	hist, _ := h.eng.Store.History("db", 0)
	if len(hist) == 0 || hist[0].Trigger != "restore" || hist[0].Outcome != state.OutcomeVerified || hist[0].ID != res.RevisionID {
		t.Fatalf("history: %+v", hist)
	}
	if res.PreRestore == nil {
		t.Fatal("no pre-restore backup")
	}
	pre, err := h.eng.Store.GetBackup(res.PreRestore.ID)
	if err != nil || pre.Trigger != state.TriggerPreRestore || pre.Outcome != state.BackupOK {
		t.Fatalf("pre-restore backup: %+v, %v", pre, err)
	}

	// The restore is what runs: the next pass has nothing to do.
	if p, err := h.eng.Plan(context.Background(), h.source()); err != nil || p.HasChanges() {
		t.Fatalf("plan after restore: %v, %+v", err, p)
	}

	// The pre-restore backup holds the data from before the restore.
	if _, err := h.restore(pre.ID); err != nil {
		t.Fatal(err)
	}
	h.wantData("v2")
}

func TestRestoreRefusesDamagedArchive(t *testing.T) {
	h := newBackupHarness(t, fleetParts{})
	h.apply()
	h.setData("v1")
	good := h.backup(state.TriggerManual)
	b := h.backup(state.TriggerManual)

	path := filepath.Join(h.stateDir, "backups", filepath.FromSlash(b.Archive))
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	raw[len(raw)/2] ^= 0x01
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	h.setData("v2")
	before := len(h.goodBackups())
	_, err = h.restore(b.ID)
	if err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Fatalf("restore of a damaged archive: %v", err)
	}
	if len(h.mem.Halts) != 0 {
		t.Errorf("a refused restore halted %v", h.mem.Halts)
	}
	h.wantData("v2")
	row, _ := h.eng.Store.GetBackup(b.ID)
	if row.Outcome != state.BackupDamaged {
		t.Errorf("catalog outcome %q, want damaged", row.Outcome)
	}
	if n := len(h.goodBackups()); n != before-1 {
		t.Errorf("%d good backups after the refused restore, want %d (no pre-restore backup)", n, before-1)
	}

	results, err := h.eng.VerifyBackups(context.Background(), h.source().Config, "db")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]VerifyResult{}
	for _, r := range results {
		seen[r.Backup.ID] = r
	}
	if r := seen[b.ID]; r.Err == nil || !strings.Contains(r.Err.Error(), "damaged") || r.Backup.Outcome != state.BackupDamaged {
		t.Errorf("verify of the damaged backup: %+v", r)
	}
	if r := seen[good.ID]; r.Err != nil || r.Backup.Outcome != state.BackupOK {
		t.Errorf("verify of the good backup: %+v", r)
	}

	// The newest good backup is what a restore without an ID takes.
	res, err := h.restore("")
	if err != nil || res.Backup.ID != good.ID {
		t.Fatalf("restore of the newest good backup: %+v, %v", res, err)
	}
	h.wantData("v1")
}

func TestRestorePutsBackWhenVerificationFails(t *testing.T) {
	h := newBackupHarness(t, fleetParts{})
	h.apply()
	h.setData("v1")
	b := h.backup(state.TriggerManual)
	h.setData("v2")
	// Replica 0 cannot read the restored data: it exits once resumed.
	h.mem.ResumeExit["db/0"] = 1
	res, err := h.restore(b.ID)
	if err == nil || res == nil || res.Outcome != RestorePutBack {
		t.Fatalf("restore: %+v, %v", res, err)
	}
	if !strings.Contains(res.Message, "the data from before the restore (backup "+res.PreRestore.ID+") is back") {
		t.Errorf("message: %s", res.Message)
	}
	h.wantData("v2")
	h.wantVersion("1.0.0")
	hist, _ := h.eng.Store.History("db", 0)
	if hist[0].Trigger != "restore" || hist[0].Outcome != state.OutcomeRolledBack {
		t.Errorf("restore revision: %+v", hist[0])
	}
}

func TestBackupRetention(t *testing.T) {
	h := newBackupHarness(t, fleetParts{
		extra:   `hooks { migrate = ["migrate-${var.v}"] }`,
		rollout: `backup_before = "always"`,
		backup:  `keep = { count = 2 }`,
	})
	h.apply()
	h.setData("v1")
	var ids []string
	for i := 0; i < 4; i++ {
		ids = append(ids, h.backup(state.TriggerManual).ID)
	}
	good := h.goodBackups()
	if len(good) != 2 || good[0].ID != ids[3] || good[1].ID != ids[2] {
		t.Fatalf("catalog after 4 backups with keep 2: %+v", good)
	}
	want := []string{ids[2] + ".json", ids[2] + ".tar.gz", ids[3] + ".json", ids[3] + ".tar.gz"}
	sort.Strings(want)
	if got := h.destFiles(); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("destination after retention: %v, want %v", got, want)
	}

	// An upgrade takes a pre-upgrade backup tied to its revision, which
	// retention keeps while a rollback of the upgrade would restore it.
	h.vars["v"] = "2.0.0"
	res := h.apply()
	if outcome(res, "db") != ResultVerified {
		t.Fatalf("upgrade: %+v", res.Servers)
	}
	rev := res.Servers[0].RevisionID
	pre, err := h.eng.Store.PreUpgradeBackup(rev)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		h.backup(state.TriggerManual)
	}
	if _, err := h.eng.Store.GetBackup(pre.ID); err != nil {
		t.Fatalf("retention removed the pre-upgrade backup of the current revision: %v", err)
	}
	if n := len(h.goodBackups()); n != 3 {
		t.Errorf("%d good backups, want the 2 newest and the pre-upgrade one", n)
	}

	// A heal records a newer verified revision of the same desired state;
	// rolling back still crosses the upgrade, so its backup still stays.
	h.mem.Crash("db", 1, 137)
	if res := h.apply(); outcome(res, "db") != ResultVerified {
		t.Fatalf("heal: %+v", res.Servers)
	}
	h.backup(state.TriggerManual)
	h.backup(state.TriggerManual)
	if _, err := h.eng.Store.GetBackup(pre.ID); err != nil {
		t.Fatalf("retention removed the pre-upgrade backup after a heal: %v", err)
	}
	if _, err := os.Stat(filepath.Join(h.stateDir, "backups", filepath.FromSlash(pre.Archive))); err != nil {
		t.Fatalf("the pre-upgrade archive is gone: %v", err)
	}

	// An upgrade that fails and is rolled back took a newer pre-upgrade
	// backup, whose data is already back; the last upgrade that stayed
	// is still the one a rollback crosses.
	h.mem.FailVersion["db@3.0.0"] = true
	h.vars["v"] = "3.0.0"
	if res := h.apply(); outcome(res, "db") != ResultRolledBack {
		t.Fatalf("failed upgrade: %+v", res.Servers)
	}
	h.backup(state.TriggerManual)
	h.backup(state.TriggerManual)
	if _, err := h.eng.Store.GetBackup(pre.ID); err != nil {
		t.Fatalf("retention removed the pre-upgrade backup after a rolled-back upgrade: %v", err)
	}
}

// A restore's pre-restore backup runs retention, which must not remove the
// backup being restored (the oldest of keep = 2 here).
func TestRestoreKeepsTheRestoredBackup(t *testing.T) {
	h := newBackupHarness(t, fleetParts{backup: `keep = { count = 2 }`})
	h.apply()
	h.setData("v1")
	old := h.backup(state.TriggerManual)
	h.setData("v2")
	h.backup(state.TriggerManual)
	res, err := h.restore(old.ID)
	if err != nil {
		t.Fatal(err)
	}
	h.wantData("v1")
	if _, err := h.eng.Store.GetBackup(old.ID); err != nil {
		t.Fatalf("the restored backup was removed by the pre-restore backup's retention: %v", err)
	}
	if _, err := os.Stat(filepath.Join(h.stateDir, "backups", filepath.FromSlash(old.Archive))); err != nil {
		t.Fatalf("the restored archive is gone: %v", err)
	}
	if _, err := h.eng.Store.GetBackup(res.PreRestore.ID); err != nil {
		t.Fatalf("no pre-restore backup: %v", err)
	}
}

// migrationParts is db with a migrate hook per version and a backup
// before every upgrade.
var migrationParts = fleetParts{
	extra:   `hooks { migrate = ["migrate-${var.v}"] }`,
	rollout: `backup_before = "always"`,
}

// upgradeWithMigration applies 1.0.0 with data "v1", then 2.0.0, whose
// migrate hook rewrites the data of both replicas to "migrated".
func upgradeWithMigration(h *backupHarness) *ApplyResult {
	h.t.Helper()
	h.apply()
	h.setData("v1")
	for r := 0; r < 2; r++ {
		h.mem.ExecWrites["migrate-2.0.0"] = append(h.mem.ExecWrites["migrate-2.0.0"], memory.FileWrite{Replica: r, Path: "/data", Name: "state", Data: []byte("migrated")})
	}
	h.vars["v"] = "2.0.0"
	return h.apply()
}

func TestAutoRollbackRestoresDataFromBeforeMigration(t *testing.T) {
	h := newBackupHarness(t, migrationParts)
	h.mem.FailVersion["db@2.0.0"] = true
	res := upgradeWithMigration(h)
	if outcome(res, "db") != ResultRolledBack {
		t.Fatalf("upgrade: %+v", res.Servers)
	}
	rev := res.Servers[0].RevisionID
	pre, err := h.eng.Store.PreUpgradeBackup(rev)
	if err != nil {
		t.Fatalf("no pre-upgrade backup of revision %d: %v", rev, err)
	}
	if pre.Version != "1.0.0" {
		t.Errorf("the pre-upgrade backup is of %s", pre.Version)
	}
	if msg := res.Servers[0].Message; !strings.Contains(msg, "the data from before the migration (backup "+pre.ID+") is restored") {
		t.Errorf("message: %s", msg)
	}
	h.wantData("v1")
	h.wantVersion("1.0.0")
	migrated, err := h.eng.Store.MigratedSince("db", rev-1)
	if err != nil || len(migrated) == 0 || migrated[0].ID != rev {
		t.Errorf("revision %d is not marked migrated: %+v, %v", rev, migrated, err)
	}
}

func TestRollbackAcrossMigration(t *testing.T) {
	t.Run("refused without a data policy, then restore", func(t *testing.T) {
		h := newBackupHarness(t, migrationParts)
		res := upgradeWithMigration(h)
		if outcome(res, "db") != ResultVerified {
			t.Fatalf("upgrade: %+v", res.Servers)
		}
		h.wantData("migrated")
		rev := res.Servers[0].RevisionID
		pre, err := h.eng.Store.PreUpgradeBackup(rev)
		if err != nil {
			t.Fatal(err)
		}
		_, err = h.rollback("")
		if err == nil {
			t.Fatal("a rollback across a migration without a data policy went ahead")
		}
		for _, want := range []string{"revision " + strconv.FormatInt(rev, 10) + " (2.0.0)", pre.ID, "--restore-data", "--keep-data"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("refusal lacks %q: %v", want, err)
			}
		}
		h.wantVersion("2.0.0")
		h.wantData("migrated")

		target, err := h.rollback(DataRestore)
		if err != nil {
			t.Fatal(err)
		}
		if target.Version != "1.0.0" {
			t.Errorf("rolled back to %s", target.Version)
		}
		h.wantVersion("1.0.0")
		h.wantData("v1")
	})
	t.Run("keep", func(t *testing.T) {
		h := newBackupHarness(t, migrationParts)
		if res := upgradeWithMigration(h); outcome(res, "db") != ResultVerified {
			t.Fatalf("upgrade: %+v", res.Servers)
		}
		if _, err := h.rollback(DataKeep); err != nil {
			t.Fatal(err)
		}
		h.wantVersion("1.0.0")
		h.wantData("migrated")
	})
}

func TestDrill(t *testing.T) {
	h := newBackupHarness(t, fleetParts{})
	h.apply()
	h.setData("v1")
	b := h.backup(state.TriggerManual)
	h.setData("v2")
	var res *RestoreResult
	var err error
	h.locked("drill", func() {
		res, err = h.eng.Restore(context.Background(), h.source().Config, RestoreRequest{Server: "db", Drill: true})
	})
	if err != nil || res.Outcome != DrillPassed || res.Backup.ID != b.ID {
		t.Fatalf("drill: %+v, %v", res, err)
	}
	if got := strings.Join(h.mem.CopyIns, ","); got != "db-drill/0:/data" {
		t.Errorf("copied in: %s", got)
	}
	if got, _ := h.mem.File("db-drill", 0, "/data", "state"); string(got) != "v1" {
		t.Errorf("the drill replica got %q", got)
	}
	if halts := haltsOf(h.mem, "db"); len(halts) != 0 {
		t.Errorf("a drill halted live replicas: %v", halts)
	}
	h.wantData("v2")
	h.wantVersion("1.0.0")
	if got := h.mem.Servers(); strings.Join(got, ",") != "db" {
		t.Errorf("servers after the drill: %v", got)
	}
	last, passed, err := h.eng.Store.LatestDrills()
	if err != nil || last["db"] == nil || passed["db"] == nil || last["db"].BackupID != b.ID || last["db"].Outcome != state.DrillPassed {
		t.Fatalf("drills: %+v, %+v, %v", last, passed, err)
	}
	hist, _ := h.eng.Store.History("db", 0)
	if hist[0].Trigger == "restore" {
		t.Errorf("a drill recorded a restore revision")
	}
}

func TestBackupSecretsNeverShown(t *testing.T) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	key := id.String()
	const password = "hunter2-dump-password"
	h := newBackupHarness(t, fleetParts{backup: `
    command         = ["dump", "--password", secret("dump_password")]
    restore_command = ["load", "--password", secret("dump_password")]
    encryption_key  = secret("backup_key")`})
	h.secrets["dump_password"] = password
	h.secrets["backup_key"] = key
	h.mem.ExecOutput["dump"] = "the dump"
	h.mem.ExecStdin = map[string][]byte{}
	h.apply()
	h.setData("v1")

	b := h.backup(state.TriggerManual)
	if !b.Encrypted {
		t.Error("the archive is not encrypted")
	}
	h.setData("v2")
	if _, err := h.restore(b.ID); err != nil {
		t.Fatal(err)
	}
	h.wantData("v1")
	if got := string(h.mem.ExecStdin["load"]); got != "the dump" {
		t.Errorf("the restore command read %q", got)
	}

	// A failing dump command that prints its password on stderr.
	h.mem.ExecExit["dump"] = 3
	h.mem.ExecStderr["dump"] = "auth failed with password " + password + " and key " + key
	var berr error
	h.locked("backup", func() {
		_, berr = h.eng.Backup(context.Background(), h.source().Config, BackupRequest{Server: "db", Trigger: state.TriggerManual})
	})
	if berr == nil || !strings.Contains(berr.Error(), "exit code 3") || !strings.Contains(berr.Error(), spec.Redacted) {
		t.Fatalf("failing dump: %v", berr)
	}

	rows, err := h.eng.Store.Backups("", 0)
	if err != nil {
		t.Fatal(err)
	}
	var texts []string
	for _, r := range rows {
		j, _ := json.Marshal(r)
		texts = append(texts, string(j), string(r.Manifest))
	}
	var manifests []string
	_ = filepath.WalkDir(filepath.Join(h.stateDir, "backups"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			raw, _ := os.ReadFile(p)
			if strings.HasSuffix(p, ".json") {
				manifests = append(manifests, p)
			}
			texts = append(texts, string(raw))
		}
		return nil
	})
	if len(manifests) == 0 {
		t.Fatal("no manifest at the destination")
	}
	hist, _ := h.eng.Store.History("", 0)
	for _, r := range hist {
		texts = append(texts, r.Message, string(r.Spec))
	}
	texts = append(texts, berr.Error(), h.progress.String(), h.logs.String())
	for i, text := range texts {
		for _, secret := range []string{password, key} {
			if strings.Contains(text, secret) {
				t.Errorf("text %d shows a secret: %s", i, text)
			}
		}
	}
	if !strings.Contains(h.progress.String(), "backup FAILED") {
		t.Errorf("progress lacks the failure:\n%s", h.progress.String())
	}
}

func TestSyncBackupsOnANewStore(t *testing.T) {
	h := newBackupHarness(t, fleetParts{rollout: `backup_before = "always"`})
	h.apply()
	h.setData("v1")
	first := h.backup(state.TriggerManual)
	h.setData("v1.1")
	h.vars["v"] = "1.1.0"
	res := h.apply()
	if outcome(res, "db") != ResultVerified {
		t.Fatalf("upgrade: %+v", res.Servers)
	}
	second, err := h.eng.Store.PreUpgradeBackup(res.Servers[0].RevisionID)
	if err != nil {
		t.Fatal(err)
	}

	// A new machine: an empty store, the same backup directory.
	st, err := state.Open(filepath.Join(t.TempDir(), "fresh.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	e2 := &Engine{Store: st, Registry: h.eng.Registry, ProvEnv: h.eng.ProvEnv, ManagedBy: "test", LoadOptions: h.opts()}
	cfg := h.source().Config
	added, known, errs := e2.SyncBackups(context.Background(), cfg, "")
	if added != 2 || known != 0 || len(errs) != 0 {
		t.Fatalf("sync: %d added, %d known, %v", added, known, errs)
	}
	if added, known, _ := e2.SyncBackups(context.Background(), cfg, "db"); added != 0 || known != 2 {
		t.Fatalf("second sync: %d added, %d known", added, known)
	}
	for _, b := range []*state.Backup{first, second} {
		row, err := st.GetBackup(b.ID)
		if err != nil || row.Outcome != state.BackupOK || row.SHA256 != b.SHA256 || row.Archive != b.Archive || row.Trigger != b.Trigger {
			t.Fatalf("synced row of %s: %+v, %v", b.ID, row, err)
		}
	}
	// The pre-upgrade backup belongs to a revision of the old store; in
	// the new one that ID is no revision (or another one), whose rollback
	// must not restore it.
	if row, _ := st.GetBackup(second.ID); row.RevisionID != 0 {
		t.Errorf("the synced pre-upgrade backup is tied to revision %d of the new store", row.RevisionID)
	}
	if _, err := st.PreUpgradeBackup(second.RevisionID); err == nil {
		t.Errorf("revision %d of the new store has a pre-upgrade backup", second.RevisionID)
	}
	// Synced into the store that made it, it keeps its revision.
	if err := h.eng.Store.DeleteBackup(second.ID); err != nil {
		t.Fatal(err)
	}
	if added, _, errs := h.eng.SyncBackups(context.Background(), cfg, "db"); added != 1 || len(errs) != 0 {
		t.Fatalf("sync into the old store: %d added, %v", added, errs)
	}
	if row, _ := h.eng.Store.GetBackup(second.ID); row.RevisionID != second.RevisionID {
		t.Errorf("re-synced pre-upgrade backup: revision %d, want %d", row.RevisionID, second.RevisionID)
	}

	h.setData("lost")
	rres, err := e2.Restore(context.Background(), cfg, RestoreRequest{Server: "db", BackupID: first.ID})
	if err != nil || rres.Outcome != RestoreDone {
		t.Fatalf("restore from a synced backup: %+v, %v", rres, err)
	}
	h.wantData("v1")
}

// The restore command of a rollback across a migration runs once the old
// version runs; when it fails, what it printed is scrubbed of the backup
// block's secrets, in an automatic rollback and in one by hand.
func TestRollbackRestoreCommandFailureIsRedacted(t *testing.T) {
	const password = "hunter2-dump-password"
	parts := fleetParts{
		extra:   migrationParts.extra,
		rollout: migrationParts.rollout,
		backup: `
    command         = ["dump", secret("dump_password")]
    restore_command = ["load", secret("dump_password")]`,
	}
	setup := func(t *testing.T) *backupHarness {
		h := newBackupHarness(t, parts)
		h.secrets["dump_password"] = password
		h.mem.ExecOutput["dump"] = "the dump"
		h.mem.ExecExit["load"] = 1
		h.mem.ExecStderr["load"] = "load: wrong password " + password
		return h
	}
	t.Run("auto-rollback", func(t *testing.T) {
		h := setup(t)
		h.mem.FailVersion["db@2.0.0"] = true
		res := upgradeWithMigration(h)
		msg := res.Servers[0].Message
		if outcome(res, "db") != ResultFailed || !strings.Contains(msg, "the restore command failed with exit code 1: load: wrong password "+spec.Redacted) {
			t.Fatalf("outcome %s: %s", outcome(res, "db"), msg)
		}
		h.wantData("v1") // the data paths are back; only the dump's load failed
		if strings.Contains(msg+h.progress.String()+h.logs.String(), password) {
			t.Errorf("the password shows:\n%s\n%s\n%s", msg, h.progress.String(), h.logs.String())
		}
	})
	t.Run("rollback", func(t *testing.T) {
		h := setup(t)
		if res := upgradeWithMigration(h); outcome(res, "db") != ResultVerified {
			t.Fatalf("upgrade: %+v", res.Servers)
		}
		_, err := h.rollback(DataRestore)
		if err == nil || !strings.Contains(err.Error(), "wrong password "+spec.Redacted) {
			t.Fatalf("rollback: %v", err)
		}
		if strings.Contains(err.Error()+h.progress.String()+h.logs.String(), password) {
			t.Errorf("the password shows: %v", err)
		}
	})
}
