package reconcile

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/Masterminds/semver/v3"
	"github.com/hashicorp/hcl/v2"
	"github.com/tendhq/tend/providers"
	"github.com/tendhq/tend/reconcile/approval"
	"github.com/tendhq/tend/reconcile/contract"
	"github.com/tendhq/tend/reconcile/state"
	"github.com/tendhq/tend/spec"
)

// Action is what a plan does to one server.
type Action string

// Actions, with the symbol a person sees in a plan.
const (
	ActionNoop    Action = "no-op"
	ActionCreate  Action = "create"  // +   new replicas
	ActionUpdate  Action = "update"  // ~   replicas replaced by the rollout strategy, or settings changed
	ActionReplace Action = "replace" // -/+ every replica stopped, then started (recreate, or a move to another provider)
	ActionReload  Action = "reload"  // ~   only config files changed: written, and each replica reloads them (reload block)
	ActionScale   Action = "scale"   // ~   only the replica count changes
	ActionHeal    Action = "heal"    // ~   replicas crashed or were changed by hand; the spec is unchanged
	ActionVerify  Action = "verify"  // ?   the last apply was interrupted before verification ended
	ActionDelete  Action = "delete"  // -   the server left the desired state (pruned)
	ActionHeld    Action = "held"    // !   the desired revision failed verification before; not applied
	ActionBlocked Action = "blocked" // !   a server it depends on is held
	ActionWaiting Action = "waiting" // …   a change window keeps it from changing now
	ActionKept    Action = "kept"    // !   it left the desired state, but pruning is off or over max_prune_percent
)

// Symbol is the mark of an action in a plan.
func (a Action) Symbol() string {
	switch a {
	case ActionCreate:
		return "+"
	case ActionUpdate, ActionScale, ActionHeal, ActionReload:
		return "~"
	case ActionReplace:
		return "-/+"
	case ActionDelete:
		return "-"
	case ActionHeld, ActionBlocked, ActionKept:
		return "!"
	case ActionVerify:
		return "?"
	case ActionWaiting:
		return "…"
	}
	return " "
}

// Changes reports whether the action changes anything.
func (a Action) Changes() bool {
	return a != ActionNoop && a != ActionHeld && a != ActionBlocked && a != ActionWaiting && a != ActionKept
}

// Stuck reports whether the server has a change that this plan does not
// apply: held, blocked, waiting for a change window, or kept (not pruned).
func (a Action) Stuck() bool {
	return a == ActionHeld || a == ActionBlocked || a == ActionWaiting || a == ActionKept
}

// ServerChange is the plan for one server.
type ServerChange struct {
	Server   string `json:"server"`
	Provider string `json:"provider"`
	Action   Action `json:"action"`
	// Reasons say why, for a person: "version 1.0.0 → 1.1.0",
	// "replica 1 crashed (exit code 3)".
	Reasons []string           `json:"reasons"`
	Changes []spec.FieldChange `json:"changes,omitempty"`

	FromVersion string `json:"from_version,omitempty"`
	ToVersion   string `json:"to_version,omitempty"`
	// Bump is the kind of version change (major, minor, patch, downgrade...);
	// a breaking API change needs a major one (see reconcile/contract).
	Bump         string `json:"bump,omitempty"`
	FromReplicas int    `json:"from_replicas"`
	ToReplicas   int    `json:"to_replicas"`
	Strategy     string `json:"strategy,omitempty"`

	// SpecHash is the desired runtime hash (what replicas are made of);
	// FieldsHash the hash of the whole desired state of the server.
	SpecHash   string `json:"spec_hash,omitempty"`
	FieldsHash string `json:"fields_hash,omitempty"`
	// Start lists the replicas to start or replace; Stop the instances to
	// remove (extra replicas, replicas on another provider, orphans).
	Start []int                `json:"start,omitempty"`
	Stop  []providers.Instance `json:"stop,omitempty"`
	// Rollout is false when only settings change (no replica is touched).
	Rollout bool `json:"rollout"`

	Wave      int      `json:"wave"`
	DependsOn []string `json:"depends_on,omitempty"`
	Trigger   string   `json:"trigger"`

	// Waits is the action a change window keeps back (Action is then
	// ActionWaiting); WaitUntil is when the window lets it go, zero when
	// none will.
	Waits     Action    `json:"waits,omitempty"`
	WaitUntil time.Time `json:"wait_until,omitzero"`
	// HealInWindow lists the failed replicas of a waiting server that the
	// apply heals meanwhile, on the last verified revision (what runs).
	HealInWindow []int `json:"heal_in_window,omitempty"`
	// WaitsFor says what a waiting change waits for: WaitWindow,
	// WaitApproval, WaitPromotion (one or more).
	WaitsFor []string `json:"waits_for,omitempty"`

	// NeedsApproval lists the kinds of change (approval rules' words) that
	// make this change need an approval; ChangeHash binds an approval to
	// it (tend approve records it). Decision is the approval or rejection
	// that decides it, when there is one.
	NeedsApproval []string        `json:"needs_approval,omitempty"`
	ChangeHash    string          `json:"change_hash,omitempty"`
	Decision      *state.Approval `json:"decision,omitempty"`
	// Promotion is the verdict of the server's promotion rule on the
	// version this change brings, when it has one.
	Promotion *approval.Verdict `json:"promotion,omitempty"`

	failed []int // replicas in a failed state, whatever spec they run
	// fallback says why a reload fell back to a rolling restart, once the
	// apply did (for the history and the apply's message).
	fallback string
	// recorded: the newest stored revision has this desired state (a
	// change starts it again, it deploys nothing new).
	recorded bool
}

// Plan is what an apply will do, as data: printable, savable as JSON, and
// applied later only if the world did not move.
type Plan struct {
	FormatVersion  int       `json:"format_version"`
	CreatedAt      time.Time `json:"created_at"`
	SourceRevision string    `json:"source_revision"`
	Env            string    `json:"env,omitempty"`
	ManagedBy      string    `json:"managed_by"`
	Host           string    `json:"host"`
	Fingerprint    string    `json:"observed_fingerprint"`
	// Targets, when set, are the servers the plan was limited to (with
	// their dependencies); nothing else is changed or pruned.
	Targets []string        `json:"targets,omitempty"`
	Changes []*ServerChange `json:"changes"`
	Waves   int             `json:"waves"`
	// PruneRefused says why the deletes of this plan are kept (tend {
	// prune = false }, or more than max_prune_percent of the servers).
	PruneRefused string `json:"prune_refused,omitempty"`
	// Warnings are what the releases it would deploy were found to be
	// (a vulnerable version, versions.Vet), with their positions;
	// Diagnostics the same, for printing with snippets.
	Warnings    []string        `json:"warnings,omitempty"`
	Diagnostics hcl.Diagnostics `json:"-"`
}

// PlanFormatVersion is the version of the plan's JSON form.
const PlanFormatVersion = 1

// HasChanges reports whether applying the plan would change anything.
func (p *Plan) HasChanges() bool {
	for _, c := range p.Changes {
		if c.Action.Changes() || len(c.HealInWindow) > 0 {
			return true
		}
	}
	return false
}

// Change returns the change for a server, or nil.
func (p *Plan) Change(server string) *ServerChange {
	for _, c := range p.Changes {
		if c.Server == server {
			return c
		}
	}
	return nil
}

// Host is the machine a reconciler runs on: a server's selector is matched
// against its name ("hostname") and labels.
type Host struct {
	Name   string
	Labels map[string]string
}

// Matches reports whether a selector picks this host. Values are glob
// patterns; the key "hostname" matches the host name.
func (h Host) Matches(sel map[string]string) bool {
	for k, pat := range sel {
		v, ok := h.Labels[k]
		if k == "hostname" {
			v, ok = h.Name, true
		}
		if !ok {
			return false
		}
		if m, err := path.Match(pat, v); err != nil || !m {
			return false
		}
	}
	return true
}

// Record is a stored revision with its fields, decoded from Spec only when
// a plan needs them (the fields hash tells whether anything changed).
type Record struct {
	state.Revision
	Fields []spec.Field
}

// fields returns the recorded fields, decoding them on first use.
func (r *Record) fields() []spec.Field {
	if r.Fields == nil && len(r.Spec) > 0 {
		_ = json.Unmarshal(r.Spec, &r.Fields)
	}
	return r.Fields
}

// fieldsHash is the hash of the recorded desired state.
func (r *Record) fieldsHash() string {
	if r.SpecHash != "" {
		return r.SpecHash
	}
	return spec.FieldsHash(r.fields())
}

// PlanInput is everything a plan is computed from: no I/O happens in
// BuildPlan.
type PlanInput struct {
	Config         *spec.Config
	SourceRevision string
	ManagedBy      string
	Host           Host
	// Observed holds every provider's instances, by provider key.
	Observed map[string][]providers.Instance
	// Latest is the newest stored revision of every server.
	Latest map[string]*Record
	// Holds maps server → fields hash → hold.
	Holds map[string]map[string]state.Hold
	Now   time.Time
	// Targets limits the plan to these servers and, transitively, the
	// servers they depend on (like terraform -target); nothing else is
	// planned, and nothing is pruned.
	Targets []string
	// IgnoreWindows applies changes even when the config's window blocks
	// say not now (tend apply -ignore-windows, for an emergency).
	IgnoreWindows bool
	// AllowPrune lets the plan delete every server, or more than
	// max_prune_percent of them (--allow-prune). tend { prune = false }
	// holds whatever it says.
	AllowPrune bool
	// Decisions are the approvals and rejections no apply used yet, by
	// server and change hash (state.Store.OpenDecisions).
	Decisions map[string]map[string]state.Approval
	// Promotions are the verdicts of the promotion rules on the desired
	// versions, by server (Engine.promotions).
	Promotions map[string]approval.Verdict
	// Ungated plans without approval and promotion rules: the autoscaler's
	// plans, which change only the replica count tend decided.
	Ungated bool
}

// TargetSet returns the servers a targeted plan covers: the targets and
// what they depend on, transitively. Unknown targets are an error.
func TargetSet(cfg *spec.Config, targets []string) (map[string]bool, error) {
	set := map[string]bool{}
	var unknown []string
	var visit func(string)
	visit = func(name string) {
		if set[name] {
			return
		}
		s, ok := cfg.Servers[name]
		if !ok {
			return
		}
		set[name] = true
		for _, d := range s.Dependencies() {
			visit(d)
		}
	}
	for _, t := range targets {
		if _, ok := cfg.Servers[t]; !ok {
			unknown = append(unknown, strconv.Quote(t))
			continue
		}
		visit(t)
	}
	if len(unknown) > 0 {
		return nil, fmt.Errorf("no server %s in the desired state (-target)", strings.Join(unknown, ", "))
	}
	return set, nil
}

// BuildPlan computes the plan. It fails only for a plan that must not be
// applied at all, such as an upgrade order that breaks a version pin.
func BuildPlan(in PlanInput) (*Plan, error) {
	p := &Plan{
		FormatVersion:  PlanFormatVersion,
		CreatedAt:      in.Now.UTC(),
		SourceRevision: in.SourceRevision,
		Env:            in.Config.Env,
		ManagedBy:      in.ManagedBy,
		Host:           in.Host.Name,
		Fingerprint:    Fingerprint(in.Observed, in.Latest),
	}
	var targeted map[string]bool
	if len(in.Targets) > 0 {
		var err error
		if targeted, err = TargetSet(in.Config, in.Targets); err != nil {
			return nil, err
		}
		p.Targets = slices.Sorted(maps.Keys(targeted))
	}
	var gate *windowGate
	if len(in.Config.Windows) > 0 && !in.IgnoreWindows {
		gate = newWindowGate(in.Config, in.Now)
	}
	// Instances by server, across providers.
	byServer := map[string][]providers.Instance{}
	for _, insts := range in.Observed {
		for _, inst := range insts {
			byServer[inst.Server] = append(byServer[inst.Server], inst)
		}
	}
	desired := map[string]*spec.Server{}
	for name, s := range in.Config.Servers {
		if in.Host.Matches(s.Selector) && (targeted == nil || targeted[name]) {
			desired[name] = s
		}
	}
	names := make([]string, 0, len(desired))
	for n := range desired {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		s := desired[name]
		fields := s.Fields()
		c := planServer(s, fields, byServer[name], in.Latest[name], in.Holds[name])
		c.DependsOn = s.Dependencies()
		gate.hold(c)
		govern(in, c, in.Latest[name])
		p.Changes = append(p.Changes, c)
	}
	// Orphans: tend-owned instances of servers that are not desired here.
	orphans := make([]string, 0)
	for name := range byServer {
		if _, ok := desired[name]; !ok && targeted == nil {
			orphans = append(orphans, name)
		}
	}
	sort.Strings(orphans)
	for _, name := range orphans {
		insts := byServer[name]
		c := &ServerChange{Server: name, Provider: insts[0].Provider, Action: ActionDelete, Stop: insts, FromReplicas: len(insts), Trigger: "apply", Rollout: true}
		c.FromVersion = insts[0].Version
		if _, elsewhere := in.Config.Servers[name]; elsewhere {
			c.Reasons = []string{"its selector no longer picks this host (" + in.Host.Name + ")"}
		} else {
			c.Reasons = []string{"no longer in the desired state"}
		}
		gate.hold(c)
		govern(in, c, in.Latest[name])
		p.Changes = append(p.Changes, c)
	}
	p.PruneRefused = guardPrune(in.Config, p, len(desired), in.AllowPrune)
	markBlocked(p)
	assignWaves(p, desired)
	if blockPinBreakers(p, in.Latest) {
		markBlocked(p)
	}
	if err := checkPinOrder(p, desired, in.Latest); err != nil {
		return nil, err
	}
	return p, nil
}

// planServer decides what to do with one desired server.
// manualRollbackHold begins the reason of a hold that tend rollback left:
// the revision rolled back from was verified, it did not fail.
const manualRollbackHold = "rolled back by hand"

// heldReason says why a held desired state is not applied: it failed
// verification, or a person rolled it back.
func heldReason(h state.Hold, server string) string {
	at := h.At.UTC().Format(time.RFC3339)
	what := fmt.Sprintf("failed verification at %s: %s", at, h.Reason)
	if strings.HasPrefix(h.Reason, manualRollbackHold) {
		what = fmt.Sprintf("was %s at %s", h.Reason, at)
	}
	return fmt.Sprintf("held: revision %d (%s) %s. Change the desired state or run `tend retry %s`.", h.RevisionID, h.Version, what, server)
}

func planServer(s *spec.Server, fields []spec.Field, insts []providers.Instance, rec *Record, holds map[string]state.Hold) *ServerChange {
	specHash, fieldsHash := spec.RuntimeHash(fields), spec.FieldsHash(fields)
	c := &ServerChange{
		Server: s.Name, Provider: s.Provider, Action: ActionNoop,
		ToVersion: s.Version, ToReplicas: s.Replicas, Strategy: s.Rollout.Strategy,
		SpecHash: specHash, FieldsHash: fieldsHash, Trigger: "apply",
	}
	if rec != nil {
		c.FromVersion = rec.Version
		if rec.Version != "" && s.Version != "" && rec.Version != s.Version {
			c.Bump = contract.Bump(rec.Version, s.Version)
		}
		if rec.fieldsHash() != fieldsHash {
			c.Changes = spec.DiffFields(rec.fields(), fields)
		} else {
			c.recorded = rec.Outcome != state.OutcomeDeleted
		}
	}
	if h, ok := holds[fieldsHash]; ok {
		c.Action = ActionHeld
		c.Reasons = []string{heldReason(h, s.Name)}
		return c
	}
	var here, elsewhere []providers.Instance
	for _, in := range insts {
		if in.Provider == s.Provider {
			here = append(here, in)
		} else {
			elsewhere = append(elsewhere, in)
		}
	}
	c.FromReplicas = len(here)
	if len(here) > 0 && c.FromVersion == "" {
		c.FromVersion = here[0].Version
	}
	if len(insts) == 0 {
		c.Action, c.Rollout = ActionCreate, true
		c.Start = seq(s.Replicas)
		c.FromVersion = ""
		if rec == nil || rec.Outcome == state.OutcomeDeleted {
			c.Reasons = []string{"new server"}
			c.Changes = nil
		} else {
			c.Reasons = []string{"no replica is running (the last revision recorded is " + strconv.FormatInt(rec.ID, 10) + ")"}
		}
		return c
	}
	if len(elsewhere) > 0 {
		c.Action, c.Rollout = ActionReplace, true
		c.Stop = append(append(c.Stop, here...), elsewhere...)
		c.Start = seq(s.Replicas)
		c.Reasons = []string{fmt.Sprintf("moves from provider %s to %s", elsewhere[0].Provider, s.Provider)}
		return c
	}
	// Replicas by index; duplicates and extras are stopped.
	byIndex := map[int]providers.Instance{}
	for _, in := range here {
		if _, dup := byIndex[in.Replica]; dup || in.Replica >= s.Replicas || in.Replica < 0 {
			c.Stop = append(c.Stop, in)
			continue
		}
		byIndex[in.Replica] = in
	}
	var outdated, missing, broken []int
	var brokenWhy []string
	for i := 0; i < s.Replicas; i++ {
		in, ok := byIndex[i]
		if ok && in.State.Failed() {
			c.failed = append(c.failed, i) // whatever spec it runs
		}
		switch {
		case !ok:
			missing = append(missing, i)
		case in.SpecHash != specHash:
			outdated = append(outdated, i)
		case in.State.Failed():
			broken = append(broken, i)
			brokenWhy = append(brokenWhy, fmt.Sprintf("replica %d %s", i, describeState(in)))
		case len(in.Drift) > 0:
			broken = append(broken, i)
			brokenWhy = append(brokenWhy, fmt.Sprintf("replica %d drifted: %s", i, strings.Join(in.Drift, "; ")))
		}
	}
	runtimeChanges := 0
	for _, ch := range c.Changes {
		if ch.Runtime {
			runtimeChanges++
		}
	}
	switch {
	case len(outdated) > 0 && reloadable(s, rec, c.Changes, byIndex, outdated) && len(missing)+len(broken)+len(c.Stop) == 0:
		c.Action, c.Rollout = ActionReload, true
		c.Start = outdated
		c.Reasons = append([]string{"only config files changed: written, and each replica reloads them (" + describeReload(s.Reload) + "), no restart"}, changeReasons(c.Changes, true)...)
	case len(outdated) > 0:
		c.Action, c.Rollout = ActionUpdate, true
		c.Start = sortedInts(append(append(append([]int(nil), outdated...), missing...), broken...))
		if s.Rollout.Strategy == spec.StrategyRecreate {
			// Every replica goes down, then every replica comes up.
			c.Action = ActionReplace
			c.Stop = append(c.Stop, here...)
			c.Start = seq(s.Replicas)
		}
		if runtimeChanges > 0 {
			c.Reasons = changeReasons(c.Changes, true)
		} else {
			c.Reasons = []string{fmt.Sprintf("%d of %d replicas run another spec than the desired one (%s)", len(outdated), len(byIndex), specHash)}
		}
	case len(missing) > 0 || len(c.Stop) > 0:
		c.Action, c.Rollout = ActionScale, true
		c.Start = missing
		switch {
		case len(c.Stop) > 0 && len(missing) == 0:
			c.Reasons = []string{fmt.Sprintf("scale down from %d to %d replicas", len(here), s.Replicas)}
		case rec != nil && fieldChanged(c.Changes, "replicas"):
			c.Reasons = []string{fmt.Sprintf("scale from %d to %d replicas", len(here), s.Replicas)}
		default:
			if len(missing) == 1 {
				c.Reasons = []string{fmt.Sprintf("replica %d is missing", missing[0])}
			} else {
				c.Reasons = []string{fmt.Sprintf("replicas %s are missing", joinInts(missing))}
			}
		}
		c.Start = sortedInts(append(c.Start, broken...))
		c.Reasons = append(c.Reasons, brokenWhy...)
	case len(broken) > 0:
		c.Action, c.Rollout, c.Trigger = ActionHeal, true, "drift"
		c.Start = broken
		c.Reasons = brokenWhy
	case rec != nil && len(rec.Spec)+len(rec.Fields) > 0 && rec.fieldsHash() != fieldsHash:
		c.Action = ActionUpdate
		c.Reasons = changeReasons(c.Changes, false)
	case rec != nil && (rec.Outcome == state.OutcomePending || rec.Outcome == state.OutcomeInterrupted):
		c.Action = ActionVerify
		c.Reasons = []string{fmt.Sprintf("revision %d was interrupted before it was verified", rec.ID)}
	case rec == nil:
		// Replicas run the desired spec, but nothing is recorded (a new
		// state directory): verify and record them.
		c.Action = ActionVerify
		c.Reasons = []string{"replicas run the desired spec, but no revision is recorded"}
	}
	if c.Action == ActionNoop {
		c.Changes = nil
	}
	return c
}

// reloadable reports whether a change of the outdated replicas can be
// applied by a reload: the server has a reload block, every runtime field
// that changed is the content or mode of a config file that is still
// declared (a removed one is applied by a restart), and the outdated
// replicas run the recorded revision, whose fields the changes are
// measured from.
func reloadable(s *spec.Server, rec *Record, changes []spec.FieldChange, byIndex map[int]providers.Instance, outdated []int) bool {
	if s.Reload == nil || rec == nil || len(changes) == 0 {
		return false
	}
	runtime := 0
	for _, ch := range changes {
		if !ch.Runtime {
			continue
		}
		runtime++
		if !strings.HasPrefix(ch.Path, "config_files.") || ch.Removed {
			return false
		}
	}
	if runtime == 0 {
		return false
	}
	was := spec.RuntimeHash(rec.fields())
	for _, i := range outdated {
		if byIndex[i].SpecHash != was {
			return false
		}
	}
	return true
}

// describeReload says how a server reloads: "SIGHUP", "the command
// nginx -s reload", "POST /admin/reload on port http".
func describeReload(rl *spec.Reload) string {
	switch {
	case rl.Signal != "":
		return "SIG" + rl.Signal
	case len(rl.Command) > 0:
		argv := make([]string, len(rl.Command))
		for i, v := range rl.Command {
			argv[i] = v.String()
		}
		return "the command " + strings.Join(argv, " ")
	}
	return rl.HTTPMethod + " " + rl.HTTPPath + " on port " + rl.Port
}

func describeState(in providers.Instance) string {
	switch in.State {
	case providers.StateExited:
		return fmt.Sprintf("exited (exit code %d)", in.ExitCode)
	case providers.StateCrashing:
		return fmt.Sprintf("is crash-looping (%d restarts, last exit code %d)", in.Restarts, in.ExitCode)
	case providers.StateMissing:
		if in.Message != "" {
			return "is missing: " + in.Message
		}
		return "is missing"
	}
	return string(in.State)
}

func fieldChanged(changes []spec.FieldChange, p string) bool {
	for _, c := range changes {
		if c.Path == p {
			return true
		}
	}
	return false
}

// changeReasons summarizes field changes: the version first, then the rest.
func changeReasons(changes []spec.FieldChange, runtimeOnly bool) []string {
	var out []string
	for _, ch := range changes {
		if runtimeOnly && !ch.Runtime {
			continue
		}
		if ch.Path == "version" {
			out = append([]string{fmt.Sprintf("version %s → %s", ch.Old, ch.New)}, out...)
			continue
		}
		switch {
		case ch.Added:
			out = append(out, ch.Path+" added")
		case ch.Removed:
			out = append(out, ch.Path+" removed")
		default:
			out = append(out, ch.Path+" changed")
		}
	}
	if len(out) > 6 {
		out = append(out[:5], fmt.Sprintf("and %d more changes", len(out)-5))
	}
	return out
}

func seq(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

func sortedInts(in []int) []int {
	sort.Ints(in)
	out := in[:0]
	for i, v := range in {
		if i == 0 || v != in[i-1] {
			out = append(out, v)
		}
	}
	return out
}

func joinInts(in []int) string {
	s := make([]string, len(in))
	for i, v := range in {
		s[i] = strconv.Itoa(v)
	}
	return strings.Join(s, ", ")
}

// markBlocked blocks changes of servers that depend on a held or blocked
// server: they would run against a dependency that is not what they expect.
func markBlocked(p *Plan) {
	// Each stuck server blocks the changes that depend on it, and those
	// block theirs in turn: a walk from the stuck ones along an index of
	// dependents, so each change is looked at once per dependency.
	dependents := map[string][]*ServerChange{}
	var stuck []*ServerChange
	for _, c := range p.Changes {
		for _, dep := range c.DependsOn {
			dependents[dep] = append(dependents[dep], c)
		}
		if c.Action.Stuck() {
			stuck = append(stuck, c)
		}
	}
	var blocked []*ServerChange
	for len(stuck) > 0 {
		d := stuck[0]
		stuck = stuck[1:]
		for _, c := range dependents[d.Server] {
			if !c.Action.Changes() || c.Action == ActionDelete {
				continue
			}
			c.Action = ActionBlocked
			stuck = append(stuck, c)
			blocked = append(blocked, c)
		}
	}
	// The reason names the first of its dependencies that is stuck.
	byName := make(map[string]*ServerChange, len(p.Changes))
	for _, c := range p.Changes {
		byName[c.Server] = c
	}
	for _, c := range blocked {
		for _, dep := range c.DependsOn {
			if d := byName[dep]; d != nil && d.Action.Stuck() {
				c.Reasons = []string{fmt.Sprintf("blocked: it depends on %s, which is %s", dep, d.Action)}
				break
			}
		}
	}
}

// assignWaves puts each change in a wave: a server comes after every server
// it depends on. Deletions come last.
func assignWaves(p *Plan, desired map[string]*spec.Server) {
	level := map[string]int{}
	var depth func(n string, seen map[string]bool) int
	depth = func(n string, seen map[string]bool) int {
		if l, ok := level[n]; ok {
			return l
		}
		if seen[n] {
			return 0 // cycles are rejected by spec; be safe
		}
		seen[n] = true
		l := 1
		if s := desired[n]; s != nil {
			for _, d := range s.Dependencies() {
				if _, ok := desired[d]; ok {
					l = max(l, depth(d, seen)+1)
				}
			}
		}
		level[n] = l
		return l
	}
	used := map[int]bool{}
	for _, c := range p.Changes {
		if c.Action == ActionDelete || !c.Action.Changes() {
			continue
		}
		c.Wave = depth(c.Server, map[string]bool{})
		used[c.Wave] = true
	}
	// Renumber the waves that have changes as 1, 2, 3...
	levels := make([]int, 0, len(used))
	for l := range used {
		levels = append(levels, l)
	}
	sort.Ints(levels)
	renum := map[int]int{}
	for i, l := range levels {
		renum[l] = i + 1
	}
	last := len(levels)
	hasDelete := false
	for _, c := range p.Changes {
		switch {
		case c.Action == ActionDelete:
			c.Wave = last + 1
			hasDelete = true
		case c.Action.Changes():
			c.Wave = renum[c.Wave]
		default:
			c.Wave = 0
		}
	}
	p.Waves = last
	if hasDelete {
		p.Waves++
	}
	sort.SliceStable(p.Changes, func(i, j int) bool {
		a, b := p.Changes[i], p.Changes[j]
		if a.Wave != b.Wave {
			return a.Wave < b.Wave
		}
		return a.Server < b.Server
	})
}

// checkPinOrder checks that every version pin holds at every step of the
// apply: when a server is upgraded, the servers that pin it and are not
// upgraded yet (a later wave, or not at all) keep their old pins.
func checkPinOrder(p *Plan, desired map[string]*spec.Server, latest map[string]*Record) error {
	var problems []string
	var pins *pinIndex
	for _, c := range p.Changes {
		if !c.Action.Changes() || c.Action == ActionDelete || c.FromVersion == c.ToVersion || c.ToVersion == "" {
			continue
		}
		newV, err := semver.NewVersion(c.ToVersion)
		if err != nil {
			continue
		}
		if pins == nil {
			pins = newPinIndex(p, latest)
		}
		// Who pins c.Server, and with which pin while c is upgraded?
		for _, pn := range pins.on[c.Server] {
			other := pn.holder
			if other.Server == c.Server || other.Action == ActionDelete {
				continue
			}
			otherLater := other.Action.Changes() && other.Wave > c.Wave
			if !otherLater {
				continue // its new pin applies, which spec checked against the desired versions
			}
			if pins.allows(pn.value, newV) {
				continue
			}
			problems = append(problems, fmt.Sprintf(
				"upgrading %s to %s (wave %d) breaks the pin of %s %s (requires %s %s), which is upgraded only in wave %d; upgrade in two commits: first give %s a version whose pin accepts both versions of %s",
				c.Server, c.ToVersion, c.Wave, other.Server, other.FromVersion, c.Server, pn.value, other.Wave, other.Server, c.Server))
		}
	}
	if len(problems) > 0 {
		return &PinError{Problems: problems}
	}
	return nil
}

// blockPinBreakers blocks an upgrade that would break the pin of a server
// whose own change this plan does not apply (held, blocked, or waiting for
// a window): that server keeps running with its recorded pin. It reports
// whether it blocked any.
func blockPinBreakers(p *Plan, latest map[string]*Record) bool {
	blocked := false
	var pins *pinIndex
	for _, c := range p.Changes {
		if !c.Action.Changes() || c.Action == ActionDelete || c.FromVersion == c.ToVersion || c.ToVersion == "" {
			continue
		}
		newV, err := semver.NewVersion(c.ToVersion)
		if err != nil {
			continue
		}
		if pins == nil {
			pins = newPinIndex(p, latest)
		}
		for _, pn := range pins.on[c.Server] {
			other := pn.holder
			if other.Server == c.Server || !other.Action.Stuck() {
				continue
			}
			if pins.allows(pn.value, newV) {
				continue
			}
			c.Reasons = []string{fmt.Sprintf("blocked: %s %s would break the pin of %s %s (requires %s %s), which runs on while its own change is %s",
				c.Server, c.ToVersion, other.Server, other.FromVersion, c.Server, pn.value, other.Action)}
			c.Action = ActionBlocked
			blocked = true
			break
		}
	}
	return blocked
}

// PinError says which upgrade would break which version pin.
type PinError struct{ Problems []string }

func (e *PinError) Error() string {
	return "the plan would break a version pin during the apply:\n  - " + strings.Join(e.Problems, "\n  - ")
}

// Fingerprint summarizes what was observed and recorded, so that a saved
// plan can tell whether the world moved since it was made.
func Fingerprint(observed map[string][]providers.Instance, latest map[string]*Record) string {
	h := sha256.New()
	keys := make([]string, 0, len(observed))
	for k := range observed {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		for _, in := range observed[k] {
			fmt.Fprintf(h, "%s|%s|%d|%s|%s|%s|%d\n", k, in.Server, in.Replica, in.SpecHash, in.State, strings.Join(in.Drift, ";"), in.ExitCode)
		}
	}
	servers := make([]string, 0, len(latest))
	for s := range latest {
		servers = append(servers, s)
	}
	sort.Strings(servers)
	for _, s := range servers {
		fmt.Fprintf(h, "rev|%s|%d|%s\n", s, latest[s].ID, latest[s].Outcome)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// decodeRecord turns a stored revision into a Record.
func decodeRecord(r *state.Revision) *Record { return &Record{Revision: *r} }

// guardPrune keeps the deletes of a plan that tend { prune = false } forbids,
// or that would delete every server or more than max_prune_percent of them
// (a broken or empty commit must not wipe the fleet), unless allow. It
// returns why, or "".
func guardPrune(cfg *spec.Config, p *Plan, desired int, allow bool) string {
	var deletes []*ServerChange
	for _, c := range p.Changes {
		if c.Action == ActionDelete {
			deletes = append(deletes, c)
		}
	}
	n := len(deletes)
	refused := ""
	switch {
	case n == 0:
		return ""
	case !cfg.Tend.Prune:
		refused = fmt.Sprintf("%d %s left the desired state, but tend { prune = false }: their replicas are kept", n, plural(n, "server", "servers"))
	case allow:
		return ""
	case desired == 0:
		refused = fmt.Sprintf("revision %s would delete every server (%d); a broken or empty commit must not wipe the fleet: --allow-prune (tend apply, tend run) does it", p.SourceRevision, n)
	case n*100 > cfg.Tend.MaxPrunePercent*(desired+n):
		refused = fmt.Sprintf("revision %s would delete %d of %d servers, more than max_prune_percent (%d%%): --allow-prune (tend apply, tend run) does it", p.SourceRevision, n, desired+n, cfg.Tend.MaxPrunePercent)
	default:
		return ""
	}
	for _, c := range deletes {
		c.Action = ActionKept
		c.Reasons = append(c.Reasons, "not deleted: "+refused)
	}
	return refused
}

// pinIndex holds the recorded pins (requires blocks) of a plan's servers
// by the server they pin, so that the pin checks of a plan are linear in
// its changes and pins, not quadratic.
type pinIndex struct {
	on     map[string][]recordedPin
	parsed map[string]*semver.Constraints
}

type recordedPin struct {
	holder *ServerChange
	value  string
}

func newPinIndex(p *Plan, latest map[string]*Record) *pinIndex {
	idx := &pinIndex{on: map[string][]recordedPin{}, parsed: map[string]*semver.Constraints{}}
	for _, c := range p.Changes {
		rec := latest[c.Server]
		if rec == nil {
			continue
		}
		for _, f := range rec.fields() {
			if target, ok := strings.CutPrefix(f.Path, "requires."); ok {
				idx.on[target] = append(idx.on[target], recordedPin{holder: c, value: f.Value})
			}
		}
	}
	return idx
}

// allows reports whether the pin accepts v; a pin that does not parse
// accepts everything (spec refused it when it was recorded).
func (idx *pinIndex) allows(pin string, v *semver.Version) bool {
	con, ok := idx.parsed[pin]
	if !ok {
		con, _ = spec.ParseConstraint(pin)
		idx.parsed[pin] = con
	}
	return con == nil || con.Check(v)
}
