package reconcile

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/tendhq/tend/providers"
	"github.com/tendhq/tend/reconcile/backup"
	"github.com/tendhq/tend/reconcile/state"
	"github.com/tendhq/tend/spec"
)

// BackupRequest asks for one backup of one server.
type BackupRequest struct {
	Server     string
	Trigger    string // state.Trigger*
	RevisionID int64  // the revision a pre-upgrade backup belongs to
	// Dest, when set, is used instead of the backup block's destination.
	Dest backup.Destination
	// Keep names a backup that the retention after this one must not
	// remove: the one a restore is about to put back.
	Keep string
}

// Backup takes one backup of a server now: from one running replica, every
// data path of its backup block (through the provider's DataCopier) and the
// output of its command (through Execer), as one archive at the block's
// destination. The result is recorded in the catalog, good or failed, and
// retention runs after a good one. The caller holds the lock.
func (e *Engine) Backup(ctx context.Context, cfg *spec.Config, req BackupRequest) (*state.Backup, error) {
	s, prov, err := e.backupServer(cfg, req.Server)
	if err != nil {
		return nil, err
	}
	dest := req.Dest
	if dest == nil {
		if dest, err = backup.Resolve(s.Backup, e.ProvEnv.StateDir); err != nil {
			return nil, fmt.Errorf("%s: %s", s.Name, redactBackup(s, err.Error()))
		}
	}
	if backup.IsReadOnly(dest) {
		return nil, fmt.Errorf("%s: the backup destination %s is read_only: tend restores from it and writes nothing there", s.Name, dest.URL())
	}
	ctx, cancel := context.WithTimeout(ctx, s.Backup.Timeout)
	defer cancel()
	insts, err := e.serverInstances(ctx, prov, s.Name)
	if err != nil {
		return nil, err
	}
	from, ok := backupSource(s, insts)
	if !ok {
		return nil, fmt.Errorf("%s has no running replica to back up (%d observed), and its backup command needs one", s.Name, len(insts))
	}
	if from.State != providers.StateRunning {
		e.say(s.Name, "no replica is running: backing up the data replica %d left (%s)", from.Replica, from.State)
	}
	start := e.now()
	m := backup.Manifest{
		ID: newBackupID(start), Server: s.Name, Version: from.Version, Revision: from.Revision, RevisionID: req.RevisionID,
		SpecHash: from.SpecHash, Provider: s.Provider, Replica: from.Replica, Trigger: req.Trigger,
		TendVersion: e.Version, CreatedAt: start.UTC(),
	}
	e.say(s.Name, "backing up replica %d to %s (%s)", from.Replica, dest.URL(), req.Trigger)
	if d, ok := dest.(*backup.Dir); ok {
		d.CleanTemporary(s.Name)
	}
	in, err := e.backupInput(s, prov, &from)
	var stored *backup.Manifest
	if err == nil {
		stored, err = backup.Create(ctx, dest, m, in)
	}
	row := state.Backup{
		ID: m.ID, Server: s.Name, Trigger: req.Trigger, RevisionID: req.RevisionID, SourceRevision: from.Revision,
		Version: from.Version, SpecHash: from.SpecHash, Replica: from.Replica, Destination: dest.URL(),
		StartedAt: start, FinishedAt: e.now(), Outcome: state.BackupOK,
	}
	log := e.log().WithFields(logrus.Fields{"server": s.Name, "backup": m.ID, "trigger": req.Trigger, "destination": dest.URL()})
	if err != nil {
		row.Outcome, row.Error = state.BackupFailed, redactBackup(s, err.Error())
		if perr := e.Store.PutBackup(row); perr != nil {
			log.WithError(perr).Error("recording the failed backup")
		}
		log.WithField("error", row.Error).Warn("backup failed")
		e.say(s.Name, "backup FAILED: %s", row.Error)
		return &row, errors.New(row.Error)
	}
	row.Archive, row.Size, row.SHA256, row.Encrypted = stored.Archive, stored.Size, stored.SHA256, stored.Encrypted
	row.Manifest, _ = json.Marshal(stored)
	if err := e.Store.PutBackup(row); err != nil {
		return &row, fmt.Errorf("recording backup %s: %w", m.ID, err)
	}
	log.WithFields(logrus.Fields{"size": row.Size, "duration_ms": row.Duration().Milliseconds()}).Info("backup done")
	e.say(s.Name, "backup %s done: %s in %s", m.ID, HumanBytes(row.Size), roundDur(row.Duration()))
	if removed, err := e.retain(ctx, s, dest, req.Keep); err != nil {
		log.WithError(err).Warn("retention failed")
		e.say(s.Name, "warning: retention failed: %s", redactBackup(s, err.Error()))
	} else if len(removed) > 0 {
		e.say(s.Name, "retention removed %s", strings.Join(removed, ", "))
	}
	return &row, nil
}

// backupServer returns a server with a backup block, and its provider.
func (e *Engine) backupServer(cfg *spec.Config, name string) (*spec.Server, providers.Provider, error) {
	s, ok := cfg.Servers[name]
	if !ok {
		return nil, nil, fmt.Errorf("no server %q in the desired state.%s", name, spec.DidYouMean(name, cfg.ServerNames()))
	}
	if s.Backup == nil {
		return nil, nil, fmt.Errorf("server %q has no backup block: it says what to back up", name)
	}
	prov, err := e.Registry.Get(cfg, s.Provider, e.ProvEnv)
	if err != nil {
		return nil, nil, err
	}
	return s, prov, nil
}

func (e *Engine) backupInput(s *spec.Server, prov providers.Provider, from *providers.Instance) (backup.Input, error) {
	in := backup.Input{Paths: s.Backup.Paths, Key: s.Backup.EncryptionKey.Reveal()}
	if len(in.Paths) > 0 {
		dc, ok := prov.(providers.DataCopier)
		if !ok {
			return in, fmt.Errorf("the %s provider cannot copy data paths out", prov.Type())
		}
		inst := *from
		in.CopyOut = func(ctx context.Context, p string, w io.Writer) error { return dc.CopyOut(ctx, inst, p, w) }
	}
	if len(s.Backup.Command) > 0 {
		ex, ok := prov.(providers.Execer)
		if !ok {
			return in, fmt.Errorf("the %s provider cannot run the backup command", prov.Type())
		}
		d := desiredOf(s, *from, e.ManagedBy)
		inst := *from
		in.Dump = func(ctx context.Context, w io.Writer) error {
			var stderr bytes.Buffer
			r := ex.Exec(ctx, providers.ExecRequest{Desired: d, Instance: &inst, Command: reveal(s.Backup.Command), Stdout: w, Stderr: &stderr})
			if r.Err != nil {
				return fmt.Errorf("the backup command could not run: %w", r.Err)
			}
			if r.ExitCode != 0 {
				return fmt.Errorf("the backup command failed with exit code %d: %s", r.ExitCode, tail(stderr.String(), 300))
			}
			return nil
		}
	}
	return in, nil
}

// retain applies the backup block's keep rule to the server's good backups
// at dest. The newest good backup stays, and so do keep (a backup being
// restored), the pre-upgrade snapshots of changes not yet verified, and
// the snapshot that rolling back the last upgrade would restore, even when
// a heal or a restore has recorded a newer revision of the same desired
// state since.
func (e *Engine) retain(ctx context.Context, s *spec.Server, dest backup.Destination, keep string) ([]string, error) {
	rows, err := e.Store.Backups(s.Name, 0)
	if err != nil {
		return nil, err
	}
	current := int64(0)
	if rev, err := e.Store.LastVerified(s.Name); err == nil {
		current = rev.ID
	}
	lastUpgrade := e.lastUpgradeSnapshot(rows)
	var kept []backup.Kept
	byID := map[string]state.Backup{}
	for _, b := range rows {
		if b.Outcome != state.BackupOK || b.Destination != dest.URL() {
			continue
		}
		byID[b.ID] = b
		pre := b.Trigger == state.TriggerPreUpgrade && b.RevisionID != 0
		kept = append(kept, backup.Kept{ID: b.ID, CreatedAt: b.StartedAt,
			Protected: b.ID == keep || pre && (b.RevisionID >= current || b.RevisionID == lastUpgrade)})
	}
	var removed []string
	for _, id := range backup.Expired(kept, s.Backup.KeepCount, s.Backup.KeepAge, e.now()) {
		b := byID[id]
		if err := dest.Delete(ctx, backup.ManifestName(s.Name, id)); err != nil {
			return removed, err
		}
		if err := dest.Delete(ctx, b.Archive); err != nil {
			return removed, err
		}
		if err := e.Store.DeleteBackup(id); err != nil {
			return removed, err
		}
		removed = append(removed, id)
	}
	return removed, nil
}

// lastUpgradeSnapshot is the revision of the newest good pre-upgrade backup
// among rows whose change was verified, or 0. (A change in flight has its
// own snapshot protected; the data of one rolled back is already back.)
func (e *Engine) lastUpgradeSnapshot(rows []state.Backup) int64 {
	var revs []int64
	for _, b := range rows {
		if b.Outcome == state.BackupOK && b.Trigger == state.TriggerPreUpgrade && b.RevisionID != 0 {
			revs = append(revs, b.RevisionID)
		}
	}
	sort.Slice(revs, func(i, j int) bool { return revs[i] > revs[j] })
	for _, id := range revs {
		if rev, err := e.Store.Revision(id); err == nil && rev.Outcome == state.OutcomeVerified {
			return id
		}
	}
	return 0
}

// RestoreRequest asks for a restore of one server from its catalog.
type RestoreRequest struct {
	Server   string
	BackupID string // "" is the newest good backup
	// Drill restores into a throw-away replica beside the live ones and
	// checks it, leaving the server alone.
	Drill bool
}

// RestoreResult says what a restore did.
type RestoreResult struct {
	Backup     *state.Backup `json:"backup"`
	PreRestore *state.Backup `json:"pre_restore,omitempty"`
	RevisionID int64         `json:"revision,omitempty"`
	Outcome    string        `json:"outcome"` // restored, put-back, failed, drill-passed, drill-failed
	Message    string        `json:"message"`
}

// Restore outcomes.
const (
	RestoreDone    = "restored"
	RestorePutBack = "put-back" // verification failed; the data from before the restore is back
	RestoreFailed  = "failed"
)

// Restore puts a backup's data back into a server: it checks the archive's
// sha256 first (a damaged archive stops nothing), takes a pre-restore
// backup, halts the replicas, copies each data path in, resumes them, runs
// the restore_command with the dump on its standard input, and verifies
// the server with its checks. When verification fails, the pre-restore data
// is put back the same way. The restore is a revision in the history, with
// the spec that runs, so the next pass sees nothing to change. The caller
// holds the lock.
func (e *Engine) Restore(ctx context.Context, cfg *spec.Config, req RestoreRequest) (*RestoreResult, error) {
	if req.Drill {
		return e.Drill(ctx, cfg, req)
	}
	s, prov, err := e.backupServer(cfg, req.Server)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*s.Backup.Timeout)
	defer cancel()
	b, dest, local, err := e.fetchBackup(ctx, s, req.BackupID)
	if err != nil {
		return nil, err
	}
	defer local.Close()
	res := &RestoreResult{Backup: b}
	insts, err := e.serverInstances(ctx, prov, s.Name)
	if err != nil {
		return nil, err
	}
	if len(insts) == 0 {
		return nil, fmt.Errorf("%s has no replicas to restore into: apply the desired state first, then restore", s.Name)
	}
	// The pre-restore backup: what is there now, so a failed restore can
	// be undone. A read-only destination is not written: it goes to the
	// state directory instead.
	var preDest backup.Destination
	if backup.IsReadOnly(dest) {
		preDest, _ = backup.NewDir(stateBackups(e.ProvEnv.StateDir))
	}
	if _, ok := backupSource(s, insts); ok {
		pre, err := e.Backup(ctx, cfg, BackupRequest{Server: s.Name, Trigger: state.TriggerPreRestore, Dest: preDest, Keep: b.ID})
		if err != nil {
			return nil, fmt.Errorf("the pre-restore backup failed, so nothing was restored: %w", err)
		}
		res.PreRestore = pre
	} else {
		e.say(s.Name, "no replica is running: no pre-restore backup is taken")
	}
	rev, err := e.beginRestoreRevision(s, insts, fmt.Sprintf("restore of backup %s", b.ID))
	if err != nil {
		return nil, err
	}
	res.RevisionID = rev
	e.say(s.Name, "restoring backup %s (%s, %s) into %d %s (revision %d)", b.ID, b.Version, HumanBytes(b.Size), len(insts), replicaWord(len(insts)), rev)
	d := desiredOf(e.specAt(insts[0].Revision, s), insts[0], e.ManagedBy)
	err = e.putData(ctx, prov, s, d, insts, local)
	if err == nil {
		err = e.verifyRestored(ctx, prov, d, insts)
	}
	if err == nil {
		res.Outcome, res.Message = RestoreDone, fmt.Sprintf("restored backup %s (%s) and verified", b.ID, b.Version)
		e.say(s.Name, "%s", res.Message)
		return res, e.Store.FinishRevision(rev, state.OutcomeVerified, res.Message, e.now())
	}
	why := redactBackup(s, err.Error())
	e.say(s.Name, "restore FAILED: %s", why)
	if res.PreRestore == nil {
		res.Outcome, res.Message = RestoreFailed, "restoring backup "+b.ID+" failed: "+why+"; no pre-restore backup to put back"
		_ = e.Store.FinishRevision(rev, state.OutcomeFailed, res.Message, e.now())
		return res, errors.New(res.Message)
	}
	e.say(s.Name, "putting back the data from before the restore (backup %s)", res.PreRestore.ID)
	if perr := e.putBack(ctx, s, prov, d, res.PreRestore, preDest); perr != nil {
		res.Outcome, res.Message = RestoreFailed, fmt.Sprintf("restoring backup %s failed: %s; putting back pre-restore backup %s failed too: %s", b.ID, why, res.PreRestore.ID, redactBackup(s, perr.Error()))
		_ = e.Store.FinishRevision(rev, state.OutcomeFailed, res.Message, e.now())
		return res, errors.New(res.Message)
	}
	res.Outcome, res.Message = RestorePutBack, fmt.Sprintf("restoring backup %s failed: %s; the data from before the restore (backup %s) is back and verified", b.ID, why, res.PreRestore.ID)
	_ = e.Store.FinishRevision(rev, state.OutcomeRolledBack, res.Message, e.now())
	return res, errors.New(res.Message)
}

// putBack restores a pre-restore backup and verifies it.
func (e *Engine) putBack(ctx context.Context, s *spec.Server, prov providers.Provider, d *providers.Desired, b *state.Backup, dest backup.Destination) error {
	m, err := manifestOf(b)
	if err != nil {
		return err
	}
	if dest == nil {
		if dest, err = backup.Resolve(s.Backup, e.ProvEnv.StateDir); err != nil {
			return err
		}
	}
	local, err := backup.Fetch(ctx, dest, m, s.Backup.EncryptionKey.Reveal())
	if err != nil {
		return err
	}
	defer local.Close()
	insts, err := e.serverInstances(ctx, prov, s.Name)
	if err != nil {
		return err
	}
	if err := e.putData(ctx, prov, s, d, insts, local); err != nil {
		return err
	}
	return e.verifyRestored(ctx, prov, d, insts)
}

// fetchBackup finds a backup in the catalog (the newest good one when id is
// ""), and fetches and checks its archive. A damaged archive is marked so in
// the catalog and refused.
func (e *Engine) fetchBackup(ctx context.Context, s *spec.Server, id string) (*state.Backup, backup.Destination, *backup.Local, error) {
	var b *state.Backup
	if id == "" {
		var err error
		if b, err = e.newestRestorable(s.Name); err != nil {
			return nil, nil, nil, err
		}
		if b == nil {
			return nil, nil, nil, fmt.Errorf("%s has no good backup in the catalog; see `tend backups %s` (or `tend backups sync` on a new machine)", s.Name, s.Name)
		}
	} else {
		var err error
		if b, err = e.Store.GetBackup(id); err != nil {
			return nil, nil, nil, fmt.Errorf("no backup %s in the catalog; see `tend backups %s`", id, s.Name)
		}
		if b.Server != s.Name {
			return nil, nil, nil, fmt.Errorf("backup %s is of %s, not of %s", id, b.Server, s.Name)
		}
		if b.Outcome == state.BackupFailed {
			return nil, nil, nil, fmt.Errorf("backup %s failed when it was taken (%s); it cannot be restored", id, b.Error)
		}
	}
	m, err := manifestOf(b)
	if err != nil {
		return nil, nil, nil, err
	}
	dest, err := e.destinationOf(s, b)
	if err != nil {
		return nil, nil, nil, err
	}
	e.say(s.Name, "checking backup %s (%s) at %s", b.ID, HumanBytes(b.Size), dest.URL())
	local, err := backup.Fetch(ctx, dest, m, s.Backup.EncryptionKey.Reveal())
	var damaged *backup.DamagedError
	if errors.As(err, &damaged) {
		_ = e.Store.SetBackupOutcome(b.ID, state.BackupDamaged, damaged.Error())
		return nil, nil, nil, fmt.Errorf("%w; nothing was stopped", damaged)
	}
	if err != nil {
		return nil, nil, nil, fmt.Errorf("fetching backup %s: %s", b.ID, redactBackup(s, err.Error()))
	}
	return b, dest, local, nil
}

// newestRestorable is the backup a restore or drill takes by default: the
// newest good one that is not a pre-restore backup (that one undoes a
// restore, and is restored by its ID), else the newest good one.
func (e *Engine) newestRestorable(server string) (*state.Backup, error) {
	rows, err := e.Store.Backups(server, 0)
	if err != nil {
		return nil, err
	}
	var fallback *state.Backup
	for i := range rows {
		if rows[i].Outcome != state.BackupOK {
			continue
		}
		if rows[i].Trigger != state.TriggerPreRestore {
			return &rows[i], nil
		}
		if fallback == nil {
			fallback = &rows[i]
		}
	}
	return fallback, nil
}

// destinationOf returns where a catalogued backup is: the server's
// destination when the catalog names it, else the directory the catalog
// names (a backup block whose destination moved still restores old
// directory backups; a pre-restore backup of a read-only destination is in
// the state directory).
func (e *Engine) destinationOf(s *spec.Server, b *state.Backup) (backup.Destination, error) {
	dest, err := backup.Resolve(s.Backup, e.ProvEnv.StateDir)
	if err != nil {
		return nil, errors.New(redactBackup(s, err.Error()))
	}
	if dest.URL() == b.Destination {
		return dest, nil
	}
	if strings.HasPrefix(b.Destination, "file://") {
		return backup.Parse(b.Destination)
	}
	return nil, fmt.Errorf("backup %s is at %s, and the backup block of %s now names %s", b.ID, b.Destination, s.Name, dest.URL())
}

func manifestOf(b *state.Backup) (*backup.Manifest, error) {
	var m backup.Manifest
	if err := json.Unmarshal(b.Manifest, &m); err != nil || m.Archive == "" {
		return nil, fmt.Errorf("backup %s has no manifest in the catalog", b.ID)
	}
	return &m, nil
}

// putData halts the replicas, copies the archive's data paths into each,
// resumes them, and runs the restore_command with the dump.
func (e *Engine) putData(ctx context.Context, prov providers.Provider, s *spec.Server, d *providers.Desired, insts []providers.Instance, local *backup.Local) error {
	if err := e.copyIn(ctx, prov, insts, local, true); err != nil {
		return err
	}
	return e.runRestoreCommand(ctx, prov, s, d, insts[0], local)
}

// copyIn halts the replicas and copies the archive's data paths into each;
// with resume, it starts them again.
func (e *Engine) copyIn(ctx context.Context, prov providers.Provider, insts []providers.Instance, local *backup.Local, resume bool) error {
	if len(local.Manifest.Paths) == 0 {
		return nil
	}
	dc, ok1 := prov.(providers.DataCopier)
	h, ok2 := prov.(providers.Halter)
	if !ok1 || !ok2 {
		return fmt.Errorf("the %s provider cannot restore data paths", prov.Type())
	}
	for _, in := range insts {
		if err := h.Halt(ctx, in, stopGrace(nil, "")); err != nil {
			return fmt.Errorf("halting replica %d: %w", in.Replica, err)
		}
	}
	for _, in := range insts {
		in := in
		err := local.Extract(ctx, func(ctx context.Context, p string, r io.Reader) error {
			return dc.CopyIn(ctx, in, p, r)
		}, nil)
		if err != nil {
			return fmt.Errorf("copying into replica %d: %w", in.Replica, err)
		}
	}
	if !resume {
		return nil
	}
	for _, in := range insts {
		if _, err := h.Resume(ctx, in); err != nil {
			return fmt.Errorf("resuming replica %d: %w", in.Replica, err)
		}
	}
	return nil
}

// runRestoreCommand runs the backup block's restore_command beside inst,
// with the archive's dump on its standard input.
func (e *Engine) runRestoreCommand(ctx context.Context, prov providers.Provider, s *spec.Server, d *providers.Desired, inst providers.Instance, local *backup.Local) error {
	if len(s.Backup.RestoreCommand) == 0 || local.Manifest.Command == nil {
		return nil
	}
	ex, ok := prov.(providers.Execer)
	if !ok {
		return fmt.Errorf("the %s provider cannot run the restore command", prov.Type())
	}
	e.say(s.Name, "running the restore command")
	return local.Extract(ctx, func(ctx context.Context, _ string, r io.Reader) error {
		_, err := io.Copy(io.Discard, r)
		return err
	}, func(ctx context.Context, dump io.Reader) error {
		var out bytes.Buffer
		r := ex.Exec(ctx, providers.ExecRequest{Desired: d, Instance: &inst, Command: reveal(s.Backup.RestoreCommand), Stdin: dump, Stdout: &out, Stderr: &out})
		if r.Err != nil {
			return fmt.Errorf("the restore command could not run: %w", r.Err)
		}
		if r.ExitCode != 0 {
			return fmt.Errorf("the restore command failed with exit code %d: %s", r.ExitCode, tail(out.String(), 300))
		}
		return nil
	})
}

// afterRestore finishes a restoreSnapshot once the rollout to the previous
// version is over: with run (that version runs), it runs the restore
// command; either way it releases the fetched archive. It is called
// exactly once.
type afterRestore func(ctx context.Context, run bool) error

// restoreSnapshot puts the pre-upgrade backup of revision revID back into
// the server's replicas and leaves them halted, for the previous version to
// start on. then runs the restore command once that version runs. Its
// errors, and then's, are redacted: the restore command's output may echo
// the backup block's secrets.
func (e *Engine) restoreSnapshot(ctx context.Context, cfg *spec.Config, s *spec.Server, revID int64) (note string, then afterRestore, err error) {
	b, err := e.Store.PreUpgradeBackup(revID)
	if errors.Is(err, state.ErrNotFound) {
		return fmt.Sprintf("the migrate hook of revision %d ran and no backup was taken before it (backup_before), so the data stays as the migration left it", revID), func(context.Context, bool) error { return nil }, nil
	}
	if err != nil {
		return "", nil, err
	}
	if s.Backup == nil {
		return "", nil, fmt.Errorf("backup %s was taken before revision %d, but %s has no backup block now to say how to reach it", b.ID, revID, s.Name)
	}
	prov, err := e.Registry.Get(cfg, s.Provider, e.ProvEnv)
	if err != nil {
		return "", nil, err
	}
	local, err := e.putSnapshot(ctx, prov, s, b)
	if err != nil {
		return "", nil, errors.New(redactBackup(s, err.Error()))
	}
	then = func(ctx context.Context, run bool) error {
		defer local.Close()
		if !run {
			return nil
		}
		now, err := e.serverInstances(ctx, prov, s.Name)
		if err != nil || len(now) == 0 {
			return fmt.Errorf("no replica to run the restore command in: %v", err)
		}
		if err := e.runRestoreCommand(ctx, prov, s, desiredOf(s, now[0], e.ManagedBy), now[0], local); err != nil {
			return errors.New(redactBackup(s, err.Error()))
		}
		return nil
	}
	return fmt.Sprintf("the data from before the migration (backup %s) is restored", b.ID), then, nil
}

// putSnapshot fetches a pre-upgrade backup and copies its data paths into
// the server's replicas, which it leaves halted. The caller closes the
// archive it returns.
func (e *Engine) putSnapshot(ctx context.Context, prov providers.Provider, s *spec.Server, b *state.Backup) (*backup.Local, error) {
	m, err := manifestOf(b)
	if err != nil {
		return nil, err
	}
	dest, err := e.destinationOf(s, b)
	if err != nil {
		return nil, err
	}
	local, err := backup.Fetch(ctx, dest, m, s.Backup.EncryptionKey.Reveal())
	if err != nil {
		return nil, err
	}
	insts, err := e.serverInstances(ctx, prov, s.Name)
	if err != nil {
		local.Close()
		return nil, err
	}
	e.say(s.Name, "restoring the data from before the migration (backup %s)", b.ID)
	if err := e.copyIn(ctx, prov, insts, local, false); err != nil {
		local.Close()
		return nil, err
	}
	return local, nil
}

// verifyRestored runs the server's checks against the restored replicas.
func (e *Engine) verifyRestored(ctx context.Context, prov providers.Provider, d *providers.Desired, insts []providers.Instance) error {
	var replicas []int
	for _, in := range insts {
		replicas = append(replicas, in.Replica)
	}
	e.say(d.Server.Name, "verifying for %s", d.Server.Rollout.VerifyFor)
	return e.verifyReplicas(ctx, prov, d, replicas, d.Server.Rollout.VerifyFor)
}

// beginRestoreRevision records a restore in the history with the spec of
// the server's newest revision (what runs), so that the next pass sees
// nothing to change.
func (e *Engine) beginRestoreRevision(s *spec.Server, insts []providers.Instance, msg string) (int64, error) {
	r := state.Revision{Server: s.Name, Version: insts[0].Version, SourceRevision: insts[0].Revision, Trigger: "restore", Message: msg, StartedAt: e.now()}
	if latest, err := e.Store.LatestAll(); err == nil && latest[s.Name] != nil {
		l := latest[s.Name]
		r.SourceRevision, r.SpecHash, r.Version, r.Spec = l.SourceRevision, l.SpecHash, l.Version, l.Spec
	}
	return e.Store.BeginRevision(r)
}

// specAt returns the server as the source revision rev described it (what
// replicas of that revision run, and the checks they pass), with s's backup
// block; s itself when the store has no snapshot of rev or it does not load.
func (e *Engine) specAt(rev string, s *spec.Server) *spec.Server {
	if rev == "" {
		return s
	}
	files, err := e.Store.GetSource(rev)
	if err != nil {
		return s
	}
	cfg, diags := spec.NewLoader(snapshotOptions(e.LoadOptions, files)).LoadFiles("snapshot "+rev, files)
	if diags.HasErrors() || cfg == nil || cfg.Servers[s.Name] == nil {
		return s
	}
	then := *cfg.Servers[s.Name]
	then.Backup = s.Backup
	return &then
}

// serverInstances observes one server's replicas.
func (e *Engine) serverInstances(ctx context.Context, prov providers.Provider, server string) ([]providers.Instance, error) {
	resp := prov.Observe(ctx, providers.ObserveRequest{ManagedBy: e.ManagedBy, Server: server})
	if resp.Err != nil {
		return nil, fmt.Errorf("observing %s: %w", server, resp.Err)
	}
	var out []providers.Instance
	for _, in := range resp.Instances {
		if in.Server == server {
			out = append(out, in)
		}
	}
	providers.SortInstances(out)
	return out, nil
}

// backupSource is the replica a backup reads: the first running one; when
// none runs and the backup is of data paths only, the first replica, whose
// data is as it left it (a crash-looping release must not keep its fix
// from going out behind backup_before).
func backupSource(s *spec.Server, insts []providers.Instance) (providers.Instance, bool) {
	if in, ok := firstRunning(insts); ok {
		return in, true
	}
	if len(insts) > 0 && len(s.Backup.Command) == 0 {
		return insts[0], true
	}
	return providers.Instance{}, false
}

func firstRunning(insts []providers.Instance) (providers.Instance, bool) {
	for _, in := range insts {
		if in.State == providers.StateRunning {
			return in, true
		}
	}
	return providers.Instance{}, false
}

// desiredOf is the Desired of what a replica runs, with s's settings.
func desiredOf(s *spec.Server, in providers.Instance, managedBy string) *providers.Desired {
	return &providers.Desired{Server: s, SpecHash: in.SpecHash, Revision: in.Revision, ManagedBy: managedBy}
}

func stateBackups(stateDir string) string { return strings.TrimRight(stateDir, "/") + "/backups" }

func newBackupID(t time.Time) string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return t.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b)
}

func reveal(vs []spec.Value) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = v.Reveal()
	}
	return out
}

func tail(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// HumanBytes writes a size for a person: "12.3 MiB", "512 B".
func HumanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// redactBackup scrubs the server's secrets, and those of its backup block
// (command, restore command, encryption key, object store keys), from msg.
func redactBackup(s *spec.Server, msg string) string {
	msg = redact(s, msg)
	b := s.Backup
	if b == nil {
		return msg
	}
	vals := append(append([]spec.Value{b.EncryptionKey}, b.Command...), b.RestoreCommand...)
	if b.S3 != nil {
		vals = append(vals, b.S3.SecretKey, b.S3.AccessKey)
	}
	for _, v := range vals {
		if v.IsSensitive() && len(v.Reveal()) >= 3 {
			msg = strings.ReplaceAll(msg, v.Reveal(), spec.Redacted)
		}
	}
	return msg
}
