package reconcile

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tendhq/tend/reconcile/approval"
	"github.com/tendhq/tend/reconcile/state"
	"github.com/tendhq/tend/spec"
)

// What a waiting change waits for (ServerChange.WaitsFor).
const (
	WaitWindow    = "window"
	WaitApproval  = "approval"
	WaitPromotion = "promotion"
)

// gateChange is the change as the approval gate sees it; rec is the
// server's newest recorded revision (nil for none).
func gateChange(c *ServerChange, rec *Record) approval.Change {
	act := c.Action
	if act == ActionWaiting || act == ActionHeld && c.Waits != "" {
		act = c.Waits
	}
	ch := approval.Change{Server: c.Server, Action: string(act), ToVersion: c.ToVersion, ToState: c.FieldsHash}
	if rec != nil && rec.Outcome != state.OutcomeDeleted {
		ch.FromVersion, ch.FromState = rec.Version, rec.fieldsHash()
	}
	if act == ActionDelete {
		ch.ToVersion, ch.ToState = "", ""
		if ch.FromVersion == "" {
			ch.FromVersion = c.FromVersion
		}
	}
	return ch
}

// needsPromotion reports whether a change brings a version that a
// promotion rule must have seen verified elsewhere first: a new server, or
// a version other than the recorded one.
func needsPromotion(ch approval.Change) bool {
	return ch.Action != string(ActionDelete) && ch.ToVersion != "" && ch.ToVersion != ch.FromVersion
}

// govern applies the approval and promotion rules of the config to one
// planned change: a change that needs an approval nobody gave, or a
// version not proven in the environment it is promoted from, waits; a
// rejected change is held. Heals, verifications and the autoscaler's plans
// (in.Ungated) are not governed: they keep what was approved.
func govern(in PlanInput, c *ServerChange, rec *Record) {
	if in.Ungated {
		return
	}
	act := c.Action
	if act == ActionWaiting {
		act = c.Waits
	}
	switch act {
	case ActionCreate, ActionUpdate, ActionReload, ActionReplace, ActionScale, ActionDelete:
	default:
		return
	}
	cfg := in.Config
	ch := gateChange(c, rec)
	var waits []string
	var until time.Time
	if rule := cfg.PromotionRule(c.Server); rule != nil && needsPromotion(ch) {
		v, ok := in.Promotions[c.Server]
		switch {
		case !ok:
			waits = append(waits, fmt.Sprintf("waiting for promotion: whether %s was verified in %s was not checked", c.ToVersion, rule.From))
		case !v.OK:
			waits = append(waits, "waiting for promotion: "+v.Reason)
			until = v.Until
		default:
			c.Reasons = append(c.Reasons, "promoted: "+v.Reason)
		}
		c.Promotion = &v
		if !ok {
			c.Promotion = nil
		}
	}
	kinds := approval.Required(cfg.ApprovalRules(c.Server), ch)
	if len(kinds) > 0 {
		c.ChangeHash, c.NeedsApproval = ch.Hash(), kinds
		d, decided := in.Decisions[c.Server][c.ChangeHash]
		switch {
		case decided && d.Decision == state.Rejected:
			c.Decision = &d
			c.Action, c.Waits, c.WaitUntil, c.WaitsFor, c.HealInWindow = ActionHeld, act, time.Time{}, nil, nil
			c.Reasons = []string{rejectedReason(d, c.Server)}
			return
		case decided:
			c.Decision = &d
			c.Reasons = append(c.Reasons, approvedReason(d))
		default:
			waits = append(waits, fmt.Sprintf("waiting for approval: %s needs one (approval rules: %s); run `tend approve %s --revision %s`",
				approval.Describe(kinds, ch), strings.Join(kinds, ", "), c.Server, in.SourceRevision))
		}
	}
	if len(waits) == 0 {
		return
	}
	if c.Action != ActionWaiting {
		c.Waits, c.Action = c.Action, ActionWaiting
		c.WaitUntil = time.Time{}
		// Failed replicas are not left down while the change waits: they
		// are healed on the last verified revision, as in a window.
		if c.Waits != ActionCreate && c.Waits != ActionDelete && len(c.failed) > 0 {
			c.HealInWindow = append([]int(nil), c.failed...)
			c.Reasons = append(c.Reasons, fmt.Sprintf("meanwhile %s %s healed on the last verified revision", replicaNames(c.HealInWindow), verbOf(len(c.HealInWindow))))
		}
	}
	for _, w := range waits {
		switch {
		case strings.HasPrefix(w, "waiting for promotion"):
			c.WaitsFor = append(c.WaitsFor, WaitPromotion)
		default:
			c.WaitsFor = append(c.WaitsFor, WaitApproval)
		}
	}
	c.Reasons = append(waits, c.Reasons...)
	// The loop looks again when the soak ends; a window's opening or
	// closing counts as well, whichever comes first.
	if !until.IsZero() && (c.WaitUntil.IsZero() || until.Before(c.WaitUntil)) {
		c.WaitUntil = until.UTC()
	}
}

func verbOf(n int) string {
	if n == 1 {
		return "is"
	}
	return "are"
}

func rejectedReason(d state.Approval, server string) string {
	by := d.By
	if by == "" {
		by = "someone"
	}
	return fmt.Sprintf("held: rejected by %s at %s: %s. Change the desired state, or approve this change after all: `tend approve %s`",
		by, d.At.UTC().Format(time.RFC3339), d.Note, server)
}

func approvedReason(d state.Approval) string {
	by := d.By
	if by == "" {
		by = "someone"
	}
	s := fmt.Sprintf("approved by %s at %s", by, d.At.UTC().Format(time.RFC3339))
	if d.Note != "" {
		s += " (" + d.Note + ")"
	}
	return s
}

// promotions reads, for every server of cfg on this host whose promotion
// rule must judge its desired version, the history of the environment it
// is promoted from, and judges the version. Each source of history is read
// once per server; an unreachable one makes the change wait, with why.
func (e *Engine) promotions(ctx context.Context, cfg *spec.Config, latest map[string]*Record, targets map[string]bool) map[string]approval.Verdict {
	var out map[string]approval.Verdict
	for _, name := range cfg.ServerNames() {
		s := cfg.Servers[name]
		rule := cfg.PromotionRule(name)
		if rule == nil || !e.Host.Matches(s.Selector) || (targets != nil && !targets[name]) || s.Version == "" {
			continue
		}
		from := ""
		if rec := latest[name]; rec != nil && rec.Outcome != state.OutcomeDeleted {
			from = rec.Version
		}
		if from == s.Version {
			continue
		}
		runs, err := approval.NewHistory(rule, nil).Runs(ctx, name)
		if err != nil {
			where := rule.URL
			if rule.Store != "" {
				where = rule.Store
			}
			err = fmt.Errorf("%s: %w", where, err)
		}
		if out == nil {
			out = map[string]approval.Verdict{}
		}
		out[name] = approval.Decide(rule.From, rule.Soak, s.Version, runs, err, e.now())
	}
	return out
}

// waitCounts counts a plan's waiting changes by what they wait for.
func waitCounts(p *Plan) map[string]int {
	n := map[string]int{}
	for _, c := range p.Changes {
		if c.Action != ActionWaiting {
			continue
		}
		for _, w := range c.WaitsFor {
			n[w]++
		}
	}
	return n
}

// waitsFor reports whether a waiting change waits for w.
func (c *ServerChange) waitsFor(w string) bool { return slices.Contains(c.WaitsFor, w) }

// useApproval marks the approval a change went with as used, by the
// revision the apply recorded: an approved change is applied once. It is
// used when the change ended: verified, deleted, rolled back, or failed and
// held. A change the apply did not finish (skipped, cancelled, or stopped
// by a provider that failed, which is not held and is tried again) keeps
// its approval for the next pass.
func (e *Engine) useApproval(c *ServerChange, r ServerResult) {
	d := c.Decision
	if d == nil || d.Decision != state.Approved || r.RevisionID == 0 {
		return
	}
	switch r.Outcome {
	case ResultVerified, ResultDeleted, ResultRolledBack:
	case ResultFailed:
		holds, err := e.Store.Holds()
		if err != nil {
			e.log().WithError(err).WithField("server", c.Server).Error("cannot read the holds")
			return
		}
		if _, held := holds[c.Server][c.FieldsHash]; !held {
			return
		}
	default:
		return
	}
	ok, err := e.Store.UseApproval(d.ID, r.RevisionID, e.now())
	switch {
	case err != nil:
		e.log().WithError(err).WithField("server", c.Server).Error("cannot mark the approval used")
	case !ok:
		e.log().WithFields(map[string]any{"server": c.Server, "approval": d.ID}).Warn("the approval was used already")
	}
}

// Decision is what tend approve and tend reject (and the API) record.
type Decision struct {
	Server string
	// Revision, when set, is the source revision the person reviewed:
	// the decision is refused when the plan is now for another one.
	Revision string
	By       string
	Note     string
	Reject   bool
}

// DecisionError says why a decision cannot be recorded; the CLI and the
// API show it as it is.
type DecisionError struct{ Msg string }

func (e *DecisionError) Error() string { return e.Msg }

// Decide plans src and records an approval or a rejection of the change
// the plan makes of d.Server, bound to that change's hash: a different
// change (another version, other settings, another revision recorded since)
// needs a decision of its own. The change must be one that an approval rule
// covers.
func (e *Engine) Decide(ctx context.Context, src *Source, d Decision) (*state.Approval, *ServerChange, error) {
	if d.Reject && strings.TrimSpace(d.Note) == "" {
		return nil, nil, &DecisionError{"a rejection needs a reason (--reason): it is what the plan and the notifications say"}
	}
	if d.Revision != "" && d.Revision != src.Revision && d.Revision != src.Base && !strings.HasPrefix(src.Base, d.Revision) {
		return nil, nil, &DecisionError{fmt.Sprintf("the desired state is now revision %s, not %s: review the plan of %s (tend plan) and approve that", src.Revision, d.Revision, src.Revision)}
	}
	p, err := e.plan(ctx, src, nil, false, false)
	if err != nil {
		return nil, nil, err
	}
	c := p.Change(d.Server)
	switch {
	case c == nil:
		return nil, nil, &DecisionError{fmt.Sprintf("%s has no change in the plan of revision %s", d.Server, src.Revision)}
	case c.ChangeHash == "":
		return nil, c, &DecisionError{fmt.Sprintf("%s's change (%s) needs no approval: no approval rule covers it", d.Server, c.Action)}
	case c.Decision != nil && c.Decision.Decision == state.Approved && !d.Reject:
		return c.Decision, c, &DecisionError{fmt.Sprintf("%s's change was approved already, by %s at %s", d.Server, c.Decision.By, c.Decision.At.UTC().Format(time.RFC3339))}
	}
	a := state.Approval{
		Server: d.Server, ChangeHash: c.ChangeHash, Decision: state.Approved, By: d.By, Note: d.Note,
		Action: string(gateChange(c, nil).Action), SourceRevision: src.Revision, FromVersion: c.FromVersion, ToVersion: c.ToVersion,
		At: e.now(),
	}
	if d.Reject {
		a.Decision = state.Rejected
	}
	if a.ID, err = e.Store.RecordApproval(a); err != nil {
		return nil, c, err
	}
	e.log().WithFields(map[string]any{"server": a.Server, "decision": a.Decision, "by": a.By, "change": a.ChangeHash, "revision": a.SourceRevision}).Info("change decided")
	return &a, c, nil
}

// DecisionMessage says a decision in one line, for notifications and the
// CLI: "approved by alice: update 1.4.2 → 1.5.0 (CHG-1042)".
func DecisionMessage(a *state.Approval) string {
	by := a.By
	if by == "" {
		by = "someone"
	}
	what := a.Action
	switch {
	case a.FromVersion != "" && a.ToVersion != "" && a.FromVersion != a.ToVersion:
		what += " " + a.FromVersion + " → " + a.ToVersion
	case a.ToVersion != "":
		what += " " + a.ToVersion
	case a.FromVersion != "":
		what += " " + a.FromVersion
	}
	msg := fmt.Sprintf("%s by %s: %s of revision %s", a.Decision, by, what, a.SourceRevision)
	if a.Note != "" {
		sep := " ("
		if a.Decision == state.Rejected {
			sep = ": "
		}
		msg += sep + a.Note
		if sep == " (" {
			msg += ")"
		}
	}
	return msg
}

// Decide records an approval or a rejection of a change the newest
// desired state plans (the API's POST /api/v1/approve and /reject), sends
// it as an "approval" notification, and starts a pass for an approval, so
// that the approved change is applied now.
func (l *Loop) Decide(ctx context.Context, d Decision) (*state.Approval, error) {
	l.init()
	src := l.LastGood()
	if src == nil {
		return nil, &DecisionError{"the desired state has not loaded yet: nothing is planned"}
	}
	a, _, err := l.Engine.Decide(ctx, src, d)
	if err != nil {
		return nil, err
	}
	l.notify("approval", a.Server, a.ToVersion, a.SourceRevision, DecisionMessage(a))
	if !d.Reject {
		l.Trigger("approval")
	}
	return a, nil
}
