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
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/sirupsen/logrus"
	"github.com/tendhq/tend/providers"
	"github.com/tendhq/tend/reconcile/contract"
	"github.com/tendhq/tend/reconcile/state"
	"github.com/tendhq/tend/reconcile/verify"
	"github.com/tendhq/tend/spec"
)

// Outcomes of one server in an apply.
const (
	ResultVerified   = "verified"
	ResultFailed     = "failed"
	ResultRolledBack = "rolled-back"
	ResultDeleted    = "deleted"
	ResultBlocked    = "blocked"
	ResultHeld       = "held"
	ResultSkipped    = "skipped"
	ResultWaiting    = "waiting" // for a change window
	ResultKept       = "kept"    // not pruned: prune = false, or over max_prune_percent
)

// backendError is a failure of the provider, not of the change: the backend
// was unreachable or refused. Such a change is not held (the desired state
// may be fine) and not rolled back (the backend is likely down for that too);
// the next apply converges from whatever was done.
type backendError struct{ err error }

func (e backendError) Error() string { return e.err.Error() }
func (e backendError) Unwrap() error { return e.err }

// ServerResult is what happened to one server.
type ServerResult struct {
	Server     string        `json:"server"`
	Action     Action        `json:"action"`
	Outcome    string        `json:"outcome"`
	Message    string        `json:"message,omitempty"`
	RevisionID int64         `json:"revision,omitempty"`
	Duration   time.Duration `json:"duration_ns"`
}

// ApplyResult is what happened in one apply.
type ApplyResult struct {
	ApplyID string         `json:"apply_id"`
	Servers []ServerResult `json:"servers"`
}

// Failed reports whether any server failed, rolled back or was blocked.
func (r *ApplyResult) Failed() bool {
	for _, s := range r.Servers {
		if s.Outcome == ResultFailed || s.Outcome == ResultRolledBack || s.Outcome == ResultBlocked {
			return true
		}
	}
	return false
}

func newApplyID() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Apply carries out a plan of src, wave after wave, with at most
// Parallelism servers at once. The caller holds the lock. Every server's
// outcome is recorded as soon as it is known, so an apply that dies half way
// leaves a record the next one converges from.
func (e *Engine) Apply(ctx context.Context, src *Source, p *Plan) (*ApplyResult, error) {
	// The autoscaler's counts stand in for the declared replicas, as in
	// the plan.
	src, _, err := e.scaledSource(src)
	if err != nil {
		return nil, err
	}
	if err := e.Store.PutSource(src.Revision, src.Files); err != nil {
		return nil, fmt.Errorf("recording the source snapshot: %w", err)
	}
	res := &ApplyResult{ApplyID: newApplyID()}
	par := e.Parallelism
	if par <= 0 {
		par = 10
	}
	var mu sync.Mutex
	failed := map[string]string{} // server → why, for blocking dependents
	record := func(r ServerResult) {
		mu.Lock()
		defer mu.Unlock()
		res.Servers = append(res.Servers, r)
		if r.Outcome == ResultFailed || r.Outcome == ResultRolledBack || r.Outcome == ResultBlocked {
			failed[r.Server] = r.Outcome
		}
	}
	for _, c := range p.Changes {
		if c.Action.Stuck() {
			r := ServerResult{Server: c.Server, Action: c.Action, Outcome: map[Action]string{ActionHeld: ResultHeld, ActionBlocked: ResultBlocked, ActionWaiting: ResultWaiting, ActionKept: ResultKept}[c.Action], Message: strings.Join(c.Reasons, "; ")}
			if c.Action == ActionWaiting && len(c.HealInWindow) > 0 {
				if msg, ok := e.healInWindow(ctx, src, c, res.ApplyID); !ok {
					r.Outcome = ResultFailed
					r.Message += "; " + msg
				} else {
					r.Message += "; " + msg
				}
			}
			record(r)
		}
	}
	for wave := 1; wave <= p.Waves; wave++ {
		var batch []*ServerChange
		for _, c := range p.Changes {
			if c.Wave == wave && c.Action.Changes() {
				batch = append(batch, c)
			}
		}
		sem := make(chan struct{}, par)
		var wg sync.WaitGroup
		for _, c := range batch {
			if ctx.Err() != nil {
				record(ServerResult{Server: c.Server, Action: c.Action, Outcome: ResultSkipped, Message: "the apply was cancelled before this server"})
				continue
			}
			if e.Draining != nil && e.Draining() {
				record(ServerResult{Server: c.Server, Action: c.Action, Outcome: ResultSkipped, Message: "tend is shutting down; the next run applies this server"})
				continue
			}
			mu.Lock()
			var blockedBy string
			for _, dep := range c.DependsOn {
				if why, ok := failed[dep]; ok {
					blockedBy = fmt.Sprintf("not changed: it depends on %s, which %s in this apply", dep, why)
					break
				}
			}
			mu.Unlock()
			if blockedBy != "" {
				e.say(c.Server, "%s", blockedBy)
				record(ServerResult{Server: c.Server, Action: c.Action, Outcome: ResultBlocked, Message: blockedBy})
				continue
			}
			wg.Add(1)
			sem <- struct{}{}
			go func(c *ServerChange) {
				defer wg.Done()
				defer func() { <-sem }()
				r := e.applyChange(ctx, src, c, res.ApplyID)
				e.useApproval(c, r)
				record(r)
			}(c)
		}
		wg.Wait()
	}
	sort.SliceStable(res.Servers, func(i, j int) bool { return res.Servers[i].Server < res.Servers[j].Server })
	return res, nil
}

// applyChange applies one server's change and records it.
func (e *Engine) applyChange(ctx context.Context, src *Source, c *ServerChange, applyID string) ServerResult {
	start := e.now()
	e.track(c.Server, false)
	defer e.track(c.Server, true)
	res := ServerResult{Server: c.Server, Action: c.Action}
	log := e.log().WithFields(logrus.Fields{"server": c.Server, "action": string(c.Action), "revision": src.Revision, "apply_id": applyID})
	finish := func(outcome, msg string) ServerResult {
		res.Outcome, res.Message, res.Duration = outcome, msg, e.now().Sub(start)
		log.WithFields(logrus.Fields{"outcome": outcome, "duration_ms": res.Duration.Milliseconds()}).Info("server done")
		return res
	}
	prov, err := e.Registry.Get(src.Config, c.Provider, e.ProvEnv)
	if err != nil {
		return finish(ResultFailed, err.Error())
	}
	if c.Action == ActionDelete {
		return finish(e.deleteServer(ctx, src, c, prov, applyID, &res))
	}
	s := src.Config.Servers[c.Server]
	fields := s.Fields()
	specJSON, _ := json.Marshal(fields)
	id, err := e.Store.BeginRevision(state.Revision{
		Server: s.Name, SourceRevision: src.Revision, SpecHash: c.FieldsHash, Version: s.Version,
		Spec: specJSON, Trigger: c.Trigger, ApplyID: applyID, StartedAt: e.now(),
	})
	if err != nil {
		return finish(ResultFailed, "recording the revision: "+err.Error())
	}
	res.RevisionID = id
	e.say(c.Server, "%s (revision %d)", describeStart(c), id)
	log.WithField("revision_id", id).Info("server change started")
	d := &providers.Desired{Server: s, SpecHash: c.SpecHash, Revision: src.Revision, ManagedBy: e.ManagedBy}

	if needsBackupBefore(s, c) {
		if _, berr := e.Backup(ctx, src.Config, BackupRequest{Server: s.Name, Trigger: state.TriggerPreUpgrade, RevisionID: id}); berr != nil {
			msg := "the backup before the change failed, so nothing was changed: " + redactBackup(s, berr.Error())
			_ = e.Store.FinishRevision(id, state.OutcomeFailed, msg, e.now())
			e.say(c.Server, "%s; the next apply tries again", msg)
			return finish(ResultFailed, msg)
		}
	}
	migrated := false
	var contractFirst contractStep
	err = e.rollout(ctx, prov, d, c, &migrated, func(changed, rest []int) error {
		return e.checkFirstContract(ctx, prov, d, &contractFirst, changed, rest)
	})
	// A heal or a scale runs the hooks again on the same data; only a
	// change of what runs counts as a migration a rollback must cross.
	migrated = migrated && (c.Action == ActionUpdate || c.Action == ActionReplace || c.Action == ActionReload)
	if migrated {
		if merr := e.Store.MarkMigrated(id); merr != nil {
			log.WithError(merr).Error("recording the migration failed")
		}
	}
	if err == nil {
		err = e.checkContract(ctx, prov, s, id, true, &contractFirst)
	}
	if err == nil {
		if s.Hooks != nil && len(s.Hooks.PostDeploy) > 0 {
			if herr := e.hook(ctx, prov, d, "post_deploy", s.Hooks.PostDeploy, s.Hooks.Timeout); herr != nil {
				e.say(c.Server, "warning: post_deploy hook failed: %v", herr)
			}
		}
		msg := fmt.Sprintf("%s %s verified", describeDone(c), s.Version)
		if c.fallback != "" {
			msg = c.fallback + "; " + msg
		}
		if ferr := e.Store.FinishRevision(id, state.OutcomeVerified, msg, e.now()); ferr != nil {
			return finish(ResultFailed, "recording the outcome: "+ferr.Error())
		}
		if c.Trigger != TriggerAutoscale {
			// A hold lasts "until the desired state changes": a new
			// desired state is verified, so going back to a held one
			// later is tried again. (A count the autoscaler failed to
			// reach stays held while the desired state is the same.)
			if n, herr := e.Store.ClearHolds(s.Name); herr != nil {
				log.WithError(herr).Error("releasing the holds failed")
			} else if n > 0 {
				log.WithField("holds", n).Info("holds released: a new desired state was verified")
			}
		}
		e.say(c.Server, "verified")
		return finish(ResultVerified, msg)
	}

	if ctx.Err() != nil {
		// Cancelled: a newer revision superseded this one. That is not the
		// change's fault: no hold, no rollback; the next apply converges.
		msg := "superseded by a newer revision before it was verified"
		_ = e.Store.FinishRevision(id, state.OutcomeInterrupted, msg, e.now())
		e.say(c.Server, "%s", msg)
		return finish(ResultSkipped, msg)
	}
	// The change failed: record it, hold this desired state, roll back.
	// Hook output and probe answers can echo the server's environment, so
	// every sensitive value of the server is scrubbed from the message.
	why := redact(s, err.Error())
	var be backendError
	isBackend := errors.As(err, &be)
	if !isBackend {
		// Read before the rollback replaces the replicas that failed.
		why += e.failedOutput(ctx, prov, s, c.SpecHash)
	}
	e.say(c.Server, "FAILED: %s", why)
	log.WithField("reason", why).Warn("server change failed")
	_ = e.Store.FinishRevision(id, state.OutcomeFailed, why, e.now())
	if isBackend {
		e.say(c.Server, "the provider failed, not the change: it is not held, and the next apply tries again")
		return finish(ResultFailed, why)
	}
	hold := state.Hold{Server: s.Name, SpecHash: c.FieldsHash, SourceRevision: src.Revision, Version: s.Version, RevisionID: id, Reason: why, At: e.now()}
	if herr := e.Store.PutHold(hold); herr != nil {
		log.WithError(herr).Error("recording the hold failed")
	}
	if !s.Rollout.AutoRollback || !c.Rollout {
		return finish(ResultFailed, why)
	}
	target, err := e.Store.LastVerified(s.Name)
	if errors.Is(err, state.ErrNotFound) {
		e.say(c.Server, "no verified revision to roll back to; the replicas stay as they are")
		return finish(ResultFailed, why+"; nothing verified to roll back to")
	}
	if err != nil {
		return finish(ResultFailed, why+"; reading the last verified revision: "+err.Error())
	}
	e.say(c.Server, "rolling back to revision %d (%s)", target.ID, target.Version)
	dataNote, afterCode := "", afterRestore(nil)
	if migrated {
		// The migration changed the data: the previous version gets the
		// data from before it back, restored while its replicas are down.
		note, then, derr := e.restoreSnapshot(ctx, src.Config, s, id)
		if derr != nil {
			msg := fmt.Sprintf("%s; the migrate hook ran, and restoring the data from before it failed: %s; NOT rolled back, so the previous version does not meet the new data", why, redactBackup(s, derr.Error()))
			return finish(ResultFailed, msg)
		}
		dataNote, afterCode = "; "+note, then
	}
	rbID, rerr := e.restore(ctx, src.Dir, s.Name, target, "auto-rollback", applyID)
	if afterCode != nil {
		if aerr := afterCode(ctx, rerr == nil); rerr == nil {
			rerr = aerr
		}
	}
	if rerr != nil {
		return finish(ResultFailed, fmt.Sprintf("%s%s; the rollback to revision %d failed too: %s", why, dataNote, target.ID, redact(s, rerr.Error())))
	}
	msg := fmt.Sprintf("%s; rolled back to revision %d (%s), verified as revision %d%s", why, target.ID, target.Version, rbID, dataNote)
	_ = e.Store.FinishRevision(id, state.OutcomeRolledBack, msg, e.now())
	e.say(c.Server, "rolled back to %s and verified; %s %s is held until the desired state changes or `tend retry %s`", target.Version, s.Name, s.Version, s.Name)
	return finish(ResultRolledBack, msg)
}

func describeStart(c *ServerChange) string {
	switch c.Action {
	case ActionCreate:
		return fmt.Sprintf("creating %s with %d %s", c.ToVersion, c.ToReplicas, replicaWord(c.ToReplicas))
	case ActionUpdate:
		if !c.Rollout {
			return "updating settings"
		}
		return fmt.Sprintf("%s update %s, %s", c.Strategy, versionArrow(c), replicaCount(c))
	case ActionReplace:
		return fmt.Sprintf("replacing every replica: %s", versionArrow(c))
	case ActionReload:
		return fmt.Sprintf("reloading the config files of %s, one at a time", replicaNames(c.Start))
	case ActionScale:
		return fmt.Sprintf("scaling %d → %d", c.FromReplicas, c.ToReplicas)
	case ActionHeal:
		return "healing: " + strings.Join(c.Reasons, "; ")
	case ActionVerify:
		return "verifying " + c.ToVersion
	}
	return string(c.Action)
}

func describeDone(c *ServerChange) string {
	switch c.Action {
	case ActionCreate:
		return "created"
	case ActionHeal:
		return "healed"
	case ActionScale:
		return fmt.Sprintf("scaled from %d to %d %s of", c.FromReplicas, c.ToReplicas, replicaWord(c.ToReplicas))
	case ActionVerify:
		return "checked"
	case ActionReload:
		if c.fallback != "" {
			return "restarted on the new config files of"
		}
		return fmt.Sprintf("reloaded the config files of %s (no restart) of", replicaNames(c.Start))
	}
	return "updated to"
}

func roundDur(d time.Duration) time.Duration {
	if d > time.Second {
		return d.Round(100 * time.Millisecond)
	}
	return d.Round(time.Millisecond)
}

// deleteServer stops every instance of a server that left the desired state.
func (e *Engine) deleteServer(ctx context.Context, src *Source, c *ServerChange, prov providers.Provider, applyID string, res *ServerResult) (string, string) {
	id, err := e.Store.BeginRevision(state.Revision{Server: c.Server, SourceRevision: src.Revision, Version: c.FromVersion, Trigger: "apply", ApplyID: applyID, StartedAt: e.now()})
	if err != nil {
		return ResultFailed, "recording the revision: " + err.Error()
	}
	res.RevisionID = id
	e.say(c.Server, "deleting %d %s (%s)", len(c.Stop), replicaWord(len(c.Stop)), strings.Join(c.Reasons, "; "))
	for _, in := range c.Stop {
		p := prov
		if in.Provider != c.Provider {
			if other, err := e.Registry.Get(src.Config, in.Provider, e.ProvEnv); err == nil {
				p = other
			}
		}
		if r := p.StopReplica(ctx, providers.StopRequest{Instance: in, Grace: stopGrace(src.Config, in.Provider)}); r.Err != nil {
			msg := fmt.Sprintf("stopping replica %d: %v", in.Replica, r.Err)
			_ = e.Store.FinishRevision(id, state.OutcomeFailed, msg, e.now())
			return ResultFailed, msg
		}
	}
	_ = e.Store.FinishRevision(id, state.OutcomeDeleted, "deleted: "+strings.Join(c.Reasons, "; "), e.now())
	_, _ = e.Store.ClearHolds(c.Server)
	_ = e.Store.DeleteScaleTarget(c.Server)
	return ResultDeleted, "deleted"
}

func stopGrace(cfg *spec.Config, key string) time.Duration {
	if cfg == nil {
		return 10 * time.Second
	}
	if p, ok := cfg.Providers[key]; ok && p.Process != nil {
		return p.Process.StopTimeout
	}
	return 10 * time.Second
}

// rollout changes the replicas of one server as its strategy says, then
// verifies them. Hooks run before any replica changes. A rolling or canary
// update that changes replicas in several steps calls first, when not nil,
// once the replicas of its first step are verified and before it changes
// the rest; an error of first ends the rollout there.
func (e *Engine) rollout(ctx context.Context, prov providers.Provider, d *providers.Desired, c *ServerChange, migrated *bool, first func(changed, rest []int) error) error {
	s := d.Server
	if c.Rollout && s.Hooks != nil {
		for _, h := range []struct {
			name string
			argv []spec.Value
		}{{"pre_deploy", s.Hooks.PreDeploy}, {"migrate", s.Hooks.Migrate}} {
			if len(h.argv) == 0 {
				continue
			}
			e.say(s.Name, "running the %s hook", h.name)
			if h.name == "migrate" && migrated != nil {
				*migrated = true
			}
			if err := e.hook(ctx, prov, d, h.name, h.argv, s.Hooks.Timeout); err != nil {
				return fmt.Errorf("the %s hook failed, so no replica was changed: %w", h.name, err)
			}
		}
	}
	grace := 10 * time.Second
	stopAll := func(insts []providers.Instance) error {
		for _, in := range insts {
			if r := prov.StopReplica(ctx, providers.StopRequest{Instance: in, Grace: grace}); r.Err != nil {
				return backendError{fmt.Errorf("stopping replica %d: %w", in.Replica, r.Err)}
			}
		}
		return nil
	}
	start := func(replicas []int) error {
		for _, i := range replicas {
			r := prov.StartReplica(ctx, providers.StartRequest{Desired: d, Replica: i})
			if r.Err != nil {
				return backendError{fmt.Errorf("starting replica %d: %w", i, r.Err)}
			}
			if r.Instance.State.Failed() {
				return fmt.Errorf("replica %d %s", i, describeState(r.Instance))
			}
		}
		return nil
	}
	// rolling replaces replicas in batches of max_unavailable, each batch
	// verified before the next goes down.
	rolling := func(replicas []int) error {
		batch := max(1, s.Rollout.MaxUnavailable.Of(s.Replicas))
		for i := 0; i < len(replicas); i += batch {
			part := replicas[i:min(i+batch, len(replicas))]
			e.say(s.Name, "rolling: replicas %s of %d", joinInts(part), s.Replicas)
			if err := start(part); err != nil {
				return err
			}
			if i+batch < len(replicas) {
				// Each batch must come up before the next goes down.
				if err := e.verifyReplicas(ctx, prov, d, part, 0); err != nil {
					return fmt.Errorf("%s failed verification: %w", replicaNames(part), err)
				}
				if i == 0 && first != nil {
					if err := first(part, replicas[i+batch:]); err != nil {
						return err
					}
				}
			}
		}
		return nil
	}
	if c.Rollout {
		switch {
		case c.Action == ActionReplace || c.Action == ActionCreate:
			if err := stopAll(c.Stop); err != nil {
				return err
			}
			if err := start(c.Start); err != nil {
				return err
			}
		case c.Action == ActionUpdate && s.Rollout.Strategy == spec.StrategyCanary:
			done := 0
			for _, step := range canarySteps(s) {
				upto := min(step.Of(len(c.Start)), len(c.Start))
				if upto <= done {
					continue
				}
				part := c.Start[done:upto]
				e.say(s.Name, "canary: %d of %d replicas on %s", upto, len(c.Start), s.Version)
				if err := start(part); err != nil {
					return err
				}
				firstStep := done == 0
				done = upto
				if done < len(c.Start) {
					if err := e.verifyReplicas(ctx, prov, d, c.Start[:done], s.Rollout.VerifyFor); err != nil {
						return fmt.Errorf("the canary step of %d replicas failed verification: %w", done, err)
					}
					if firstStep && first != nil {
						if err := first(c.Start[:done], c.Start[done:]); err != nil {
							return err
						}
					}
				}
			}
		case c.Action == ActionUpdate:
			if err := rolling(c.Start); err != nil {
				return err
			}
		case c.Action == ActionReload:
			why := e.reloadReplicas(ctx, prov, d, c)
			if why == "" {
				return nil // verified, replica by replica and then all
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			// Every replica restarts on the new config files, the way an
			// update without a reload block would have.
			c.fallback = why + "; fell back to a rolling restart"
			e.say(s.Name, "%s", c.fallback)
			if err := rolling(seq(s.Replicas)); err != nil {
				return fmt.Errorf("%s, which failed: %w", c.fallback, err)
			}
		default: // scale, heal
			if err := start(c.Start); err != nil {
				return err
			}
		}
		// Extra replicas go last, once the rest run.
		if c.Action != ActionReplace && c.Action != ActionCreate {
			if err := stopAll(c.Stop); err != nil {
				return err
			}
		}
	} else if sa, ok := prov.(providers.SettingsApplier); ok && c.Action == ActionUpdate {
		// Only settings changed (scaling, rollout, checks): a provider
		// whose objects hold some of them gets them; no replica restarts.
		e.say(s.Name, "applying settings")
		if err := sa.ApplySettings(ctx, d); err != nil {
			return backendError{fmt.Errorf("applying settings: %w", err)}
		}
	}
	if s.Replicas == 0 {
		return nil
	}
	e.say(s.Name, "verifying for %s", s.Rollout.VerifyFor)
	return e.verifyReplicas(ctx, prov, d, seq(s.Replicas), s.Rollout.VerifyFor)
}

func canarySteps(s *spec.Server) []spec.IntOrPercent {
	steps := s.Rollout.CanarySteps
	if len(steps) == 0 {
		steps = []spec.IntOrPercent{{Value: 1}}
	}
	return append(append([]spec.IntOrPercent(nil), steps...), spec.IntOrPercent{Value: 100, Percent: true})
}

// verifyReplicas runs the server's checks against the given replicas until
// they pass for verifyFor, failing fast when a replica stops or a check
// gives the same definite answer rollout.fail_after times in a row.
func (e *Engine) verifyReplicas(ctx context.Context, prov providers.Provider, d *providers.Desired, replicas []int, verifyFor time.Duration) error {
	s := d.Server
	want := map[int]bool{}
	for _, r := range replicas {
		want[r] = true
	}
	mine := func(ctx context.Context) (map[int]providers.Instance, error) {
		resp := prov.Observe(ctx, providers.ObserveRequest{ManagedBy: e.ManagedBy, Server: s.Name})
		if resp.Err != nil {
			return nil, resp.Err
		}
		out := map[int]providers.Instance{}
		for _, in := range resp.Instances {
			if in.Server == s.Name && want[in.Replica] && in.SpecHash == d.SpecHash {
				out[in.Replica] = in
			}
		}
		return out, nil
	}
	insts, err := mine(ctx)
	if err != nil {
		return backendError{err}
	}
	var targets []verify.Target
	for _, r := range replicas {
		in, ok := insts[r]
		if !ok {
			return fmt.Errorf("replica %d is not running the new spec", r)
		}
		targets = append(targets, verify.Target{Replica: r, Host: in.Host, Ports: in.Ports, Route: checkRoute(prov, in)})
	}
	var exec verify.ExecFunc
	var stdio verify.StdioFunc
	if ex, ok := prov.(providers.Execer); ok {
		exec = func(ctx context.Context, t verify.Target, argv []string) (int, []byte, error) {
			var out bytes.Buffer
			in := insts[t.Replica]
			r := ex.Exec(ctx, providers.ExecRequest{Desired: d, Instance: &in, Command: argv, Stdout: &out, Stderr: &out})
			return r.ExitCode, out.Bytes(), r.Err
		}
		stdio = func(ctx context.Context, t verify.Target, argv []string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
			in := insts[t.Replica]
			r := ex.Exec(ctx, providers.ExecRequest{Desired: d, Instance: &in, Command: argv, Stdin: stdin, Stdout: stdout, Stderr: stderr})
			return r.ExitCode, r.Err
		}
	}
	deadline := s.Rollout.ProgressDeadline
	var outageMu sync.Mutex
	var outage error // the provider could not be observed during verification
	o := verify.Verify(ctx, verify.Options{
		Checks: s.Checks, Targets: targets, VerifyFor: verifyFor, Deadline: deadline, FailAfter: s.Rollout.FailAfter,
		Exec: exec, Stdio: stdio, Version: s.Version,
		Alive: func(ctx context.Context) error {
			now, err := mine(ctx)
			if err != nil {
				outageMu.Lock()
				outage = err
				outageMu.Unlock()
				return nil // a failed observation is not a failed replica
			}
			for _, r := range replicas {
				in, ok := now[r]
				if !ok {
					return fmt.Errorf("replica %d is gone", r)
				}
				if in.State.Failed() {
					return fmt.Errorf("replica %d %s", r, describeState(in))
				}
			}
			return nil
		},
	})
	if !o.Verified {
		// Checks that fail while the backend itself is down (a Docker
		// Engine restarting, an API server away) say nothing about the
		// change: that is the provider's failure, not held.
		outageMu.Lock()
		seen := outage
		outageMu.Unlock()
		if ctx.Err() == nil {
			if _, err := mine(ctx); err != nil {
				seen = err
			}
		}
		if seen != nil {
			return backendError{fmt.Errorf("%s, while the provider could not be reached (%v)", o.Reason, seen)}
		}
		return errors.New(o.Reason)
	}
	return nil
}

// hook runs a one-off task through the provider.
func (e *Engine) hook(ctx context.Context, prov providers.Provider, d *providers.Desired, name string, argv []spec.Value, timeout time.Duration) error {
	ex, ok := prov.(providers.Execer)
	if !ok {
		return fmt.Errorf("the %s provider cannot run one-off tasks", prov.Type())
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	cmd := make([]string, len(argv))
	for i, a := range argv {
		cmd[i] = a.Reveal()
	}
	var out bytes.Buffer
	r := ex.Exec(ctx, providers.ExecRequest{Desired: d, Command: cmd, Stdout: &out, Stderr: &out})
	if r.Err != nil {
		return r.Err
	}
	if r.ExitCode != 0 {
		tail := strings.TrimSpace(out.String())
		if len(tail) > 300 {
			tail = "..." + tail[len(tail)-300:]
		}
		return fmt.Errorf("exit code %d: %s", r.ExitCode, tail)
	}
	return nil
}

// healInWindow heals the failed replicas of a server whose change waits
// for a window, by applying its last verified revision again: what runs.
func (e *Engine) healInWindow(ctx context.Context, src *Source, c *ServerChange, applyID string) (string, bool) {
	target, err := e.Store.LastVerified(c.Server)
	if err != nil {
		return fmt.Sprintf("%s not healed: no verified revision to heal on (%v)", replicaNames(c.HealInWindow), err), false
	}
	e.say(c.Server, "healing %s on revision %d (%s) while the change waits", replicaNames(c.HealInWindow), target.ID, target.Version)
	id, err := e.restore(ctx, src.Dir, c.Server, target, "heal-in-window", applyID)
	if err != nil {
		return fmt.Sprintf("healing on revision %d failed: %v", target.ID, err), false
	}
	return fmt.Sprintf("%s healed on revision %d (%s), verified as revision %d", replicaNames(c.HealInWindow), target.ID, target.Version, id), true
}

// restore brings a server back to a recorded revision: it re-loads that
// revision's snapshot (secrets come from the reconciler's side, as always),
// rolls the replicas to it and verifies them. It records a new revision.
func (e *Engine) restore(ctx context.Context, dir, server string, target *state.Revision, trigger, applyID string) (int64, error) {
	files, err := e.Store.GetSource(target.SourceRevision)
	if err != nil {
		return 0, fmt.Errorf("the snapshot of %s is not in the store: %w", target.SourceRevision, err)
	}
	l := spec.NewLoader(snapshotOptions(e.LoadOptions, files))
	cfg, diags := l.LoadFiles(dir, files)
	if diags.HasErrors() {
		return 0, fmt.Errorf("revision %d does not load any more: %s", target.ID, diags.Error())
	}
	s, ok := cfg.Servers[server]
	if !ok {
		return 0, fmt.Errorf("revision %d has no server %q", target.ID, server)
	}
	if e.autoscaled(cfg, s) {
		// The revision ran the count the autoscaler kept then, which its
		// record holds (the snapshot holds the declared one).
		// A copy: a loaded server may be shared (the daemon's load cache
		// hands the same one to every load of an unchanged file).
		if n := recordedReplicas(target); n >= s.Scaling.Min && n <= s.Scaling.Max {
			cp := *s
			cp.Replicas = n
			s = &cp
		}
	}
	prov, err := e.Registry.Get(cfg, s.Provider, e.ProvEnv)
	if err != nil {
		return 0, err
	}
	fields := s.Fields()
	observed, err := e.Observe(ctx, cfg)
	if err != nil {
		return 0, err
	}
	var insts []providers.Instance
	for _, list := range observed {
		for _, in := range list {
			if in.Server == server {
				insts = append(insts, in)
			}
		}
	}
	c := planServer(s, fields, insts, nil, nil)
	c.Trigger = trigger
	if c.Action == ActionNoop || c.Action == ActionVerify {
		c.Action, c.Rollout = ActionVerify, false
	}
	specJSON, _ := json.Marshal(fields)
	id, err := e.Store.BeginRevision(state.Revision{
		Server: server, SourceRevision: target.SourceRevision, SpecHash: spec.FieldsHash(fields), Version: s.Version,
		Spec: specJSON, Trigger: trigger, ApplyID: applyID, StartedAt: e.now(),
	})
	if err != nil {
		return 0, err
	}
	if s.Hooks != nil && len(s.Hooks.Migrate) > 0 {
		// Going back to a recorded revision does not migrate the data
		// again: that revision's migration ran when it was applied, and
		// the data is either still as it left it or restored from before
		// a newer migration.
		h := *s.Hooks
		h.Migrate = nil
		s.Hooks = &h
	}
	d := &providers.Desired{Server: s, SpecHash: c.SpecHash, Revision: target.SourceRevision, ManagedBy: e.ManagedBy}
	if err := e.rollout(ctx, prov, d, c, nil, nil); err != nil {
		_ = e.Store.FinishRevision(id, state.OutcomeFailed, err.Error(), e.now())
		return id, err
	}
	if err := e.checkContract(ctx, prov, s, id, false, nil); err != nil {
		_ = e.Store.FinishRevision(id, state.OutcomeFailed, err.Error(), e.now())
		return id, err
	}
	msg := fmt.Sprintf("restored revision %d (%s)", target.ID, s.Version)
	if spec.FieldsHash(fields) != target.SpecHash {
		msg += "; its desired state differs from when it was recorded (a secret or variable changed since)"
	}
	return id, e.Store.FinishRevision(id, state.OutcomeVerified, msg, e.now())
}

// Bounds of the replica output a failure message carries.
const (
	failedOutputLines    = 10   // the last lines of each replica
	failedOutputReplicas = 2    // replicas whose output is read
	failedOutputLineMax  = 200  // bytes of one line
	failedOutputMax      = 2000 // bytes in all
)

// failedOutput returns the tail of the output of the replicas of the new
// spec that are not running, as "; the output of replica N ends: ...", for
// the failure message: "exit code 127" says less than "sh: 1: notes: not
// found". It is read before a rollback replaces those replicas. Each line is
// redacted and stripped of control bytes. Empty when the provider keeps no
// output (it is no providers.Logger) or no replica of the new spec failed.
func (e *Engine) failedOutput(ctx context.Context, prov providers.Provider, s *spec.Server, specHash string) string {
	lg, ok := prov.(providers.Logger)
	if !ok || ctx.Err() != nil {
		return ""
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp := prov.Observe(ctx, providers.ObserveRequest{ManagedBy: e.ManagedBy, Server: s.Name})
	if resp.Err != nil {
		return ""
	}
	var failed []providers.Instance
	for _, in := range resp.Instances {
		if in.Server == s.Name && in.SpecHash == specHash && in.State != providers.StateRunning {
			failed = append(failed, in)
		}
	}
	sort.Slice(failed, func(i, j int) bool { return failed[i].Replica < failed[j].Replica })
	var b strings.Builder
	read := 0
	for _, in := range failed {
		if read == failedOutputReplicas {
			break
		}
		out, err := lg.Logs(ctx, in, failedOutputLines)
		if err != nil || len(bytes.TrimSpace(out)) == 0 {
			continue
		}
		read++
		var lines []string
		for _, l := range strings.Split(string(out), "\n") {
			if strings.TrimSpace(l) != "" {
				lines = append(lines, l)
			}
		}
		if len(lines) > failedOutputLines {
			lines = lines[len(lines)-failedOutputLines:]
		}
		for i, l := range lines {
			l = escapeControl(redact(s, strings.TrimRight(l, "\r")))
			if len(l) > failedOutputLineMax {
				l = strings.ToValidUTF8(l[:failedOutputLineMax], "") + "..."
			}
			lines[i] = l
		}
		fmt.Fprintf(&b, "; the output of replica %d ends: %s", in.Replica, strings.Join(lines, " | "))
	}
	msg := b.String()
	if len(msg) > failedOutputMax {
		msg = strings.ToValidUTF8(msg[:failedOutputMax], "") + "..."
	}
	return msg
}

// escapeControl writes the control characters of s (terminal escapes,
// carriage returns, tabs) and its invalid UTF-8 as \xNN, so that a replica's
// output cannot redraw the terminal of whoever reads the message.
func escapeControl(s string) string {
	var b strings.Builder
	for i, r := range s {
		switch {
		case r == utf8.RuneError && !strings.HasPrefix(s[i:], "\uFFFD"):
			fmt.Fprintf(&b, "\\x%02x", s[i])
		case unicode.IsControl(r): // C0 and C1: all below 0x100
			fmt.Fprintf(&b, "\\x%02x", r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// redact replaces every sensitive value of the server in msg with
// "(sensitive)".
func redact(s *spec.Server, msg string) string {
	var secrets []string
	add := func(v spec.Value) {
		if v.IsSensitive() && len(v.Reveal()) >= 3 {
			secrets = append(secrets, v.Reveal())
		}
	}
	for _, v := range s.Env {
		add(v)
	}
	for _, v := range s.Command {
		add(v)
	}
	for _, v := range s.Args {
		add(v)
	}
	for _, f := range s.ConfigFiles {
		add(f.Content)
	}
	if s.Hooks != nil {
		for _, list := range [][]spec.Value{s.Hooks.PreDeploy, s.Hooks.Migrate, s.Hooks.PostDeploy} {
			for _, v := range list {
				add(v)
			}
		}
	}
	// Longest first, so a secret that contains another is replaced whole.
	sort.Slice(secrets, func(i, j int) bool { return len(secrets[i]) > len(secrets[j]) })
	for _, sec := range secrets {
		msg = strings.ReplaceAll(msg, sec, spec.Redacted)
	}
	return msg
}

// needsBackupBefore reports whether the change takes a backup first: the
// rollout's backup_before says always, or major and the major version
// changes, and there are replicas whose data to keep.
func needsBackupBefore(s *spec.Server, c *ServerChange) bool {
	if s.Backup == nil || !c.Rollout || c.FromReplicas == 0 || c.Action == ActionHeal || c.Action == ActionReload {
		return false
	}
	switch s.Rollout.BackupBefore {
	case spec.BackupAlways:
		return true
	case spec.BackupMajor:
		return c.Bump == contract.BumpMajor
	}
	return false
}

// Redact replaces every sensitive value of every server of cfg in msg with
// "(sensitive)": for text that leaves the engine without a server at hand
// (the dashboard's event stream).
func Redact(cfg *spec.Config, msg string) string {
	if cfg == nil || msg == "" {
		return msg
	}
	for _, s := range cfg.Servers {
		msg = redact(s, msg)
	}
	return msg
}
