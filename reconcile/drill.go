package reconcile

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/tendhq/tend/providers"
	"github.com/tendhq/tend/reconcile/backup"
	"github.com/tendhq/tend/reconcile/state"
	"github.com/tendhq/tend/spec"
)

// Drill outcomes of RestoreResult.
const (
	DrillPassed = "drill-passed"
	DrillFailed = "drill-failed"
)

// Drill proves a backup restorable without touching the server: it starts
// a throw-away replica SERVER-drill beside the live ones (its own ports,
// its own provider-managed data), restores the backup into it, runs the
// server's checks against it, removes it (and its volumes, where the
// provider can: providers.VolumeRemover) and records the result. The
// caller holds the lock.
func (e *Engine) Drill(ctx context.Context, cfg *spec.Config, req RestoreRequest) (*RestoreResult, error) {
	s, prov, err := e.backupServer(cfg, req.Server)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*s.Backup.Timeout)
	defer cancel()
	start := e.now()
	b, _, local, err := e.fetchBackup(ctx, s, req.BackupID)
	if err != nil {
		e.recordDrill(s.Name, req.BackupID, start, err)
		return nil, err
	}
	defer local.Close()
	res := &RestoreResult{Backup: b}
	// The drill runs the release that wrote the backup, as that revision
	// described it (the desired state may have moved on since).
	ds, err := drillServer(e.specAt(b.SourceRevision, s))
	if err != nil {
		return nil, err
	}
	if _, taken := cfg.Servers[ds.Name]; taken {
		return nil, fmt.Errorf("a drill of %s restores into a throw-away server %s, and the desired state has a server of that name; rename one", s.Name, ds.Name)
	}
	d := &providers.Desired{Server: ds, SpecHash: spec.RuntimeHash(ds.Fields()), Revision: b.SourceRevision, ManagedBy: e.ManagedBy}
	e.say(s.Name, "drill: restoring backup %s into a throw-away replica %s", b.ID, ds.Name)
	err = e.drill(ctx, prov, ds, d, local)
	res.Outcome, res.Message = DrillPassed, fmt.Sprintf("backup %s (%s) restored into %s and passed the checks", b.ID, b.Version, ds.Name)
	if err != nil {
		res.Outcome, res.Message = DrillFailed, fmt.Sprintf("drill of backup %s failed: %s", b.ID, redactBackup(s, err.Error()))
	}
	e.say(s.Name, "%s", res.Message)
	if err != nil {
		err = errors.New(res.Message)
	}
	e.recordDrill(s.Name, b.ID, start, err)
	return res, err
}

// drill starts the throw-away replica, restores into it, checks it and
// removes it, whatever happened: the replica, and its volumes when the
// provider can remove them (providers.VolumeRemover), so that no plain
// copy of the backup stays on disk and the next drill starts empty. What
// an earlier drill left (a tend killed mid-drill) goes first.
func (e *Engine) drill(ctx context.Context, prov providers.Provider, ds *spec.Server, d *providers.Desired, local *backup.Local) error {
	vr, _ := prov.(providers.VolumeRemover)
	if vr == nil {
		e.say(ds.Name, "drill: the %s provider cannot remove volumes, so the data the drill restores stays at the provider after the drill (the volumes of %s replica 0)", prov.Type(), ds.Name)
	}
	if err := e.clearDrill(ctx, prov, vr, d, "an earlier drill"); err != nil {
		return fmt.Errorf("removing what an earlier drill left: %w", err)
	}
	r := prov.StartReplica(ctx, providers.StartRequest{Desired: d, Replica: 0})
	if r.Err != nil {
		// A start that failed half way may have left the replica or
		// its volumes.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), drillCleanupTimeout)
		defer cancel()
		if err := e.clearDrill(cctx, prov, vr, d, "the failed start"); err != nil {
			e.say(ds.Name, "warning: removing what the failed start of the drill replica left failed: %v", err)
		}
		return fmt.Errorf("starting the drill replica: %w", r.Err)
	}
	inst := r.Instance
	defer func() {
		cctx := context.WithoutCancel(ctx)
		stop := prov.StopReplica(cctx, providers.StopRequest{Instance: inst, Grace: stopGrace(nil, "")})
		if stop.Err != nil {
			e.say(ds.Name, "warning: removing the drill replica failed: %v", stop.Err)
			return
		}
		if vr == nil {
			return
		}
		rctx, cancel := context.WithTimeout(cctx, drillCleanupTimeout)
		defer cancel()
		if err := vr.RemoveVolumes(rctx, d, inst.Replica); err != nil {
			e.say(ds.Name, "warning: removing the drill's volumes failed, and the data restored into them is still there: %v", err)
		}
	}()
	if inst.State.Failed() {
		return fmt.Errorf("the drill replica %s", describeState(inst))
	}
	if err := e.putData(ctx, prov, ds, d, []providers.Instance{inst}, local); err != nil {
		return err
	}
	return e.verifyRestored(ctx, prov, d, []providers.Instance{inst})
}

// drillCleanupTimeout bounds the removal of a drill's volumes (and of what
// a failed start left), which run after the drill's own deadline.
const drillCleanupTimeout = 2 * time.Minute

// clearDrill stops every replica of the drill server the provider shows
// and, when vr is set, removes the volumes of replica 0 and of those it
// stopped; leftBy says, for a person, what left them. The drill server is tend's own throw-away copy (the desired
// state may not name a server so), so nothing of it is a server's data.
func (e *Engine) clearDrill(ctx context.Context, prov providers.Provider, vr providers.VolumeRemover, d *providers.Desired, leftBy string) error {
	name := d.Server.Name
	insts, err := e.serverInstances(ctx, prov, name)
	if err != nil {
		return err
	}
	replicas := []int{0}
	for _, in := range insts {
		e.say(name, "drill: removing replica %d of %s, which %s left (%s)", in.Replica, name, leftBy, in.State)
		if stop := prov.StopReplica(ctx, providers.StopRequest{Instance: in, Grace: stopGrace(nil, "")}); stop.Err != nil {
			return stop.Err
		}
		if in.Replica != 0 {
			replicas = append(replicas, in.Replica)
		}
	}
	if vr == nil {
		return nil
	}
	for _, r := range replicas {
		if err := vr.RemoveVolumes(ctx, d, r); err != nil {
			return err
		}
	}
	return nil
}

// recordDrill records a drill's outcome in the store.
func (e *Engine) recordDrill(server, backupID string, start time.Time, err error) {
	dr := state.Drill{Server: server, BackupID: backupID, Outcome: state.DrillPassed, StartedAt: start, FinishedAt: e.now()}
	if err != nil {
		dr.Outcome, dr.Message = state.DrillFailed, err.Error()
	}
	if _, perr := e.Store.PutDrill(dr); perr != nil {
		e.log().WithError(perr).WithField("server", server).Error("recording the drill")
	}
}

// drillServer is the throw-away copy of s a drill restores into: named
// SERVER-drill, one replica, every port moved to a free one of this host,
// and every volume provider-managed (a volume with a host source would be
// the live data).
func drillServer(s *spec.Server) (*spec.Server, error) {
	ds := *s
	ds.Name = s.Name + "-drill"
	if len(ds.Name) > 63 {
		ds.Name = s.Name[:57] + "-drill"
	}
	ds.Replicas = 1
	ds.Ports = nil
	for _, p := range s.Ports {
		n, err := freePort()
		if err != nil {
			return nil, fmt.Errorf("finding a free port for the drill: %w", err)
		}
		q := p
		q.Number = n
		ds.Ports = append(ds.Ports, q)
	}
	ds.Volumes = nil
	for _, v := range s.Volumes {
		w := *v
		w.Source = ""
		ds.Volumes = append(ds.Volumes, &w)
	}
	return &ds, nil
}

// freePort asks the kernel for a port free on this host, for a drill
// replica.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
