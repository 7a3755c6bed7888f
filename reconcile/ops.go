package reconcile

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/tendhq/tend/providers"
	"github.com/tendhq/tend/reconcile/state"
	"github.com/tendhq/tend/spec"
)

// Rollback restores a server to a recorded revision: toID, or when toID is 0
// the newest verified revision older than the newest revision. The desired
// state that was running before is held, so that the next apply does not undo
// the rollback (run `tend retry SERVER` or change the desired state to
// release it). The caller holds the lock.
//
// Rolling back across a revision whose migrate hook ran needs a word about
// the data: data is DataRestore (put back the backup taken before that
// migration, with the replicas down, then start the old version on it) or
// DataKeep (the operator says the old version reads the migrated data);
// without one the rollback is refused with the revision and the backup.
func (e *Engine) Rollback(ctx context.Context, dir, server string, toID int64, data string) (*state.Revision, int64, error) {
	hist, err := e.Store.History(server, 0)
	if err != nil {
		return nil, 0, err
	}
	if len(hist) == 0 {
		return nil, 0, fmt.Errorf("no revision of %q is recorded", server)
	}
	current := hist[0]
	var target *state.Revision
	if toID != 0 {
		for i := range hist {
			if hist[i].ID == toID {
				target = &hist[i]
			}
		}
		if target == nil {
			return nil, 0, fmt.Errorf("revision %d is not a revision of %q; see `tend history %s`", toID, server, server)
		}
		if target.Outcome == state.OutcomeDeleted || target.Spec == nil {
			return nil, 0, fmt.Errorf("revision %d of %q records a deletion; it cannot be restored", toID, server)
		}
	} else {
		for i := range hist {
			r := &hist[i]
			if r.Outcome == state.OutcomeVerified && r.SpecHash != current.SpecHash {
				target = r
				break
			}
		}
		if target == nil {
			return nil, 0, fmt.Errorf("no verified revision of %q differs from the current one; see `tend history %s`", server, server)
		}
	}
	then, err := e.rollbackData(ctx, dir, server, target, data)
	if err != nil {
		return target, 0, err
	}
	e.say(server, "rolling back to revision %d (%s)", target.ID, target.Version)
	id, err := e.restore(ctx, dir, server, target, "rollback", newApplyID())
	if then != nil {
		if terr := then(ctx, err == nil); err == nil {
			err = terr
		}
	}
	if err != nil {
		return target, id, err
	}
	if current.SpecHash != "" && current.SpecHash != target.SpecHash {
		err = e.Store.PutHold(state.Hold{
			Server: server, SpecHash: current.SpecHash, SourceRevision: current.SourceRevision, Version: current.Version,
			RevisionID: current.ID, Reason: fmt.Sprintf("%s to revision %d", manualRollbackHold, target.ID), At: e.now(),
		})
	}
	return target, id, err
}

// Data policies of a rollback across a migration.
const (
	DataRestore = "restore"
	DataKeep    = "keep"
)

// rollbackData decides what a rollback to target does with data that a
// migration since changed, and restores it when told to. It returns what to
// run once the old version runs (its restore command).
func (e *Engine) rollbackData(ctx context.Context, dir, server string, target *state.Revision, data string) (afterRestore, error) {
	migrated, err := e.Store.MigratedSince(server, target.ID)
	if err != nil {
		return nil, err
	}
	var crossed []state.Revision
	for _, r := range migrated {
		if r.Outcome != state.OutcomeRolledBack { // an automatic rollback already dealt with its data
			crossed = append(crossed, r)
		}
	}
	if len(crossed) == 0 || data == DataKeep {
		if len(crossed) > 0 {
			e.say(server, "keeping the data as the migration of revision %d left it (--keep-data)", crossed[0].ID)
		}
		return nil, nil
	}
	first := crossed[0]
	snap, err := e.Store.PreUpgradeBackup(first.ID)
	snapName := "no backup was taken before it (backup_before)"
	if err == nil {
		snapName = "the backup taken before it is " + snap.ID
	}
	if data != DataRestore {
		return nil, fmt.Errorf("revision %d (%s) of %s ran its migrate hook, and the rollback to revision %d crosses it; %s. "+
			"Say what the data does: --restore-data puts back the data from before that migration, --keep-data keeps the migrated data (the old version must read it)",
			first.ID, first.Version, server, target.ID, snapName)
	}
	if snap == nil {
		return nil, fmt.Errorf("--restore-data: revision %d of %s ran its migrate hook, and %s; nothing to restore (use --keep-data, or `tend restore %s --backup ID`)", first.ID, server, snapName, server)
	}
	files, err := e.Store.GetSource(snap.SourceRevision)
	if err != nil {
		files, err = e.Store.GetSource(first.SourceRevision)
	}
	if err != nil {
		return nil, fmt.Errorf("the snapshot of the desired state of revision %d is not in the store: %w", first.ID, err)
	}
	src, _, diags := LoadSnapshot(dir, first.SourceRevision, files, e.LoadOptions)
	if diags.HasErrors() || src.Config == nil || src.Config.Servers[server] == nil {
		return nil, fmt.Errorf("revision %d does not load any more, so its backup block cannot be read", first.ID)
	}
	note, then, err := e.restoreSnapshot(ctx, src.Config, src.Config.Servers[server], first.ID)
	if err != nil {
		return nil, fmt.Errorf("restoring the data from before revision %d: %w", first.ID, err)
	}
	e.say(server, "%s", note)
	return then, nil
}

// Retry releases every hold of a server, so the next apply tries its
// desired state again.
func (e *Engine) Retry(server string) (int, error) {
	return e.Store.ClearHolds(server)
}

// ServerStatus answers "what is this server doing, and why is it not
// updating?".
type ServerStatus struct {
	Server          string          `json:"server"`
	Provider        string          `json:"provider"`
	DesiredVersion  string          `json:"desired_version"`
	LiveVersions    []string        `json:"live_versions"`
	DesiredReplicas int             `json:"desired_replicas"`
	Replicas        int             `json:"replicas"`
	Running         int             `json:"running"`
	Health          string          `json:"health"` // healthy, degraded, down, missing
	Drift           []string        `json:"drift,omitempty"`
	LastRevision    *state.Revision `json:"last_revision,omitempty"`
	Held            []state.Hold    `json:"held,omitempty"`
	Pending         string          `json:"pending,omitempty"` // what the next apply would do
	// WaitsFor says what a waiting change waits for (window, approval,
	// promotion); WaitReasons say why, in words, with the command to run.
	WaitsFor    []string `json:"waits_for,omitempty"`
	WaitReasons []string `json:"wait_reasons,omitempty"`
	// Decision is the approval or rejection of its planned change.
	Decision  *state.Approval      `json:"decision,omitempty"`
	Instances []providers.Instance `json:"instances,omitempty"`
	Backup    *BackupStatus        `json:"backup,omitempty"`
	Scaling   *ScalingStatus       `json:"scaling,omitempty"`

	// Waiting: the next change waits (for a change window); Pending says
	// what for.
	Waiting bool `json:"waiting,omitempty"`
}

// ScalingStatus says who scales a server and where its count stands.
type ScalingStatus struct {
	// By is "tend" (tend's autoscaler) or "provider" (the provider scales
	// by itself: a HorizontalPodAutoscaler).
	By       string `json:"by"`
	Min      int    `json:"min"`
	Max      int    `json:"max"`
	Declared int    `json:"declared_replicas"`
	// Autoscaled is the count the autoscaler keeps, when it has decided
	// one (it stands in for the declared replicas).
	Autoscaled   int                  `json:"autoscaled_replicas,omitempty"`
	LastDecision *state.ScaleDecision `json:"last_decision,omitempty"`
}

// Status reports every desired or running server.
func (e *Engine) Status(ctx context.Context, src *Source) ([]ServerStatus, error) {
	p, err := e.plan(ctx, src, e.Targets, e.IgnoreWindows, false) // what it would do, without asking the release sources
	if err != nil {
		return nil, err
	}
	observed, err := e.Observe(ctx, src.Config)
	if err != nil {
		return nil, err
	}
	latest, err := e.Store.LatestAll()
	if err != nil {
		return nil, err
	}
	holds, err := e.Store.Holds()
	if err != nil {
		return nil, err
	}
	backups, err := e.backupStatuses(src.Config)
	if err != nil {
		return nil, err
	}
	scaling, err := e.scalingStatuses(src)
	if err != nil {
		return nil, err
	}
	byServer := map[string][]providers.Instance{}
	for _, list := range observed {
		for _, in := range list {
			byServer[in.Server] = append(byServer[in.Server], in)
		}
	}
	var out []ServerStatus
	for _, c := range p.Changes {
		st := ServerStatus{Server: c.Server, Provider: c.Provider, DesiredVersion: c.ToVersion, DesiredReplicas: c.ToReplicas, LastRevision: latest[c.Server], Backup: backups[c.Server], Scaling: scaling[c.Server]}
		versions := map[string]bool{}
		for _, in := range byServer[c.Server] {
			st.Replicas++
			versions[in.Version] = true
			if in.State == providers.StateRunning {
				st.Running++
			}
			for _, d := range in.Drift {
				st.Drift = append(st.Drift, fmt.Sprintf("replica %d: %s", in.Replica, d))
			}
			st.Instances = append(st.Instances, in)
		}
		for v := range versions {
			st.LiveVersions = append(st.LiveVersions, v)
		}
		sort.Strings(st.LiveVersions)
		switch {
		case st.Replicas == 0:
			st.Health = "missing"
		case st.Running == 0:
			st.Health = "down"
		case st.Running < max(st.DesiredReplicas, 1) || len(st.Drift) > 0:
			st.Health = "degraded"
		default:
			st.Health = "healthy"
		}
		if c.Action == ActionDelete {
			st.DesiredVersion, st.Health = "", "orphan"
		}
		for _, h := range holds[c.Server] {
			st.Held = append(st.Held, h)
		}
		sort.Slice(st.Held, func(i, j int) bool { return st.Held[i].At.Before(st.Held[j].At) })
		switch c.Action {
		case ActionNoop:
		case ActionHeld:
			// Its reason says "held: ..." already.
			st.Pending = strings.Join(c.Reasons, "; ")
		case ActionWaiting:
			st.Pending = string(c.Waits) + ", " + strings.Join(c.Reasons, "; ")
			st.Waiting = true
			st.WaitsFor = c.WaitsFor
			for _, r := range c.Reasons {
				if strings.HasPrefix(r, "waiting") {
					st.WaitReasons = append(st.WaitReasons, r)
				}
			}
		default:
			st.Pending = string(c.Action) + ": " + strings.Join(c.Reasons, "; ")
		}
		st.Decision = c.Decision
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Server < out[j].Server })
	return out, nil
}

// RecordedServerNames lists servers with a recorded revision.
func (e *Engine) RecordedServerNames() ([]string, error) {
	latest, err := e.Store.LatestAll()
	if err != nil {
		return nil, err
	}
	var out []string
	for n := range latest {
		out = append(out, n)
	}
	sort.Strings(out)
	return out, nil
}

// ErrNoChanges is returned by ApplySource when the plan changes nothing.
var ErrNoChanges = errors.New("no changes")

// ApplySource takes the lock, plans src, checks a saved plan against the
// fresh one when given, and applies. The plan applied is returned with the
// result.
func (e *Engine) ApplySource(ctx context.Context, src *Source, saved *Plan) (*Plan, *ApplyResult, error) {
	release, err := e.Lock("apply")
	if err != nil {
		return nil, nil, err
	}
	defer release()
	p, err := e.Plan(ctx, src)
	if err != nil {
		return nil, nil, err
	}
	if saved != nil {
		if err := CheckSaved(saved, p); err != nil {
			return p, nil, err
		}
	}
	if !p.HasChanges() {
		return p, &ApplyResult{}, nil
	}
	res, err := e.Apply(ctx, src, p)
	return p, res, err
}

// LoadOptionsFor returns spec options for re-loading snapshots.
func LoadOptionsFor(opts spec.Options) spec.Options {
	opts.Strict = true
	return opts
}

// scalingStatuses says, for every server with a scaling block, who scales
// it and the autoscaler's count and last decision.
func (e *Engine) scalingStatuses(src *Source) (map[string]*ScalingStatus, error) {
	_, counts, err := e.scaledSource(src)
	if err != nil {
		return nil, err
	}
	decisions, err := e.Store.LatestScaleDecisions()
	if err != nil {
		return nil, err
	}
	out := map[string]*ScalingStatus{}
	for name, s := range src.Config.Servers {
		if s.Scaling == nil {
			continue
		}
		st := &ScalingStatus{By: "provider", Min: s.Scaling.Min, Max: s.Scaling.Max, Declared: s.Replicas}
		if e.autoscaled(src.Config, s) {
			st.By = "tend"
			st.Autoscaled = counts[name]
			if d, ok := decisions[name]; ok {
				d.Inputs = nil
				st.LastDecision = &d
			}
		}
		out[name] = st
	}
	return out, nil
}
