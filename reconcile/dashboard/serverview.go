package dashboard

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/tendhq/tend/reconcile"
	"github.com/tendhq/tend/reconcile/contract"
	"github.com/tendhq/tend/reconcile/state"
	"github.com/tendhq/tend/spec"
)

// serverView is a server page's data, every message redacted.
type serverView struct {
	Name       string
	Revision   string // the desired revision an approval is for
	Row        *row   // nil: no status (the desired state no longer has it)
	Instances  []instRow
	Held       []string
	Plan       string
	PlanError  string
	History    []histRow
	Checks     []checkRow
	LastVerify string
	Contract   *contract.Contract
	ContractAt int64
	Diff       []diffRow
	DiffFrom   string
	DiffSame   bool
	HasBackup  bool
	Backups    []backupRow
	Drill      string
	Passed     string
	NextBackup string
	NextDrill  string
	Scaling    *reconcile.ScalingStatus
	Decisions  []decisionRow
}

type instRow struct {
	Replica            int
	ID, State, Class   string
	Version, Where     string
	Restarts           int
	Started, StartedAt string
	Message            string
	Drift              []string
}

type histRow struct {
	ID                        int64
	Version, Trigger, Outcome string
	Class                     string
	Started, StartedAt, Took  string
	Source, Message           string
	CanRollback               bool
}

type checkRow struct {
	Name, Kind, Target, Every, Timeout string
}

type diffRow struct {
	Class, Label, Detail string
}

type backupRow struct {
	ID, Trigger, Outcome, Class string
	Version, Size, Took         string
	When, At, Error             string
}

type decisionRow struct {
	From, To                 int
	Outcome, Reason, Message string
	When, At                 string
}

func pathEscape(s string) string { return url.PathEscape(s) }

func outcomeClass(o string) string {
	switch o {
	case string(state.OutcomeVerified), state.BackupOK, state.DrillPassed, "scaled":
		return "good"
	case string(state.OutcomePending), string(state.OutcomeDeleted), "":
		return "warn"
	}
	return "bad"
}

func newServerView(name string, d *Detail, redact func(string) string, now time.Time) *serverView {
	v := &serverView{Name: name, Revision: d.Revision, Plan: d.Plan, PlanError: d.PlanError, Scaling: scalingOf(d.Status)}
	if d.Status != nil {
		v.Row = newRow(d.Status, redact, now, 0)
		v.Held = v.Row.Held
		for _, in := range d.Status.Instances {
			ir := instRow{Replica: in.Replica, ID: in.ID, State: string(in.State), Class: instanceClass(in), Version: in.Version,
				Restarts: in.Restarts, Started: ago(in.StartedAt, now), StartedAt: stamp(in.StartedAt), Message: redact(in.Message)}
			ir.Where = in.Host
			for pn, port := range in.Ports {
				ir.Where += fmt.Sprintf(" %s:%d", pn, port)
			}
			for _, dr := range in.Drift {
				ir.Drift = append(ir.Drift, redact(dr))
			}
			v.Instances = append(v.Instances, ir)
		}
	}
	var current string
	if len(d.History) > 0 {
		current = d.History[0].SpecHash
		v.LastVerify = fmt.Sprintf("revision %d (%s): %s", d.History[0].ID, d.History[0].Outcome, redact(d.History[0].Message))
	}
	for _, r := range d.History {
		v.History = append(v.History, histRow{
			ID: r.ID, Version: r.Version, Trigger: r.Trigger, Outcome: string(r.Outcome), Class: outcomeClass(string(r.Outcome)),
			Started: ago(r.StartedAt, now), StartedAt: stamp(r.StartedAt), Took: durText(r.StartedAt, r.FinishedAt),
			Source: r.SourceRevision, Message: redact(r.Message),
			CanRollback: r.Outcome == state.OutcomeVerified && r.SpecHash != current,
		})
	}
	if s := d.Server; s != nil {
		for _, c := range s.Checks {
			v.Checks = append(v.Checks, checkRow{Name: c.Name, Kind: c.Kind, Target: checkTarget(c), Every: c.Interval.String(), Timeout: c.Timeout.String()})
		}
		v.HasBackup = s.Backup != nil && !s.Backup.ReadOnly
	}
	v.contract(d)
	v.backups(d, redact, now)
	for _, dc := range d.Decisions {
		v.Decisions = append(v.Decisions, decisionRow{From: dc.FromReplicas, To: dc.ToReplicas, Outcome: dc.Outcome,
			Reason: redact(dc.Reason), Message: redact(dc.Message), When: ago(dc.DecidedAt, now), At: stamp(dc.DecidedAt)})
	}
	return v
}

// scalingOf is the status's scaling, nil-safe.
func scalingOf(s *reconcile.ServerStatus) *reconcile.ScalingStatus {
	if s == nil {
		return nil
	}
	return s.Scaling
}

func (v *serverView) contract(d *Detail) {
	v.Contract, v.ContractAt = d.Contract, d.ContractRevision
	if d.Diff == nil || d.Previous == nil {
		return
	}
	v.DiffFrom = fmt.Sprintf("revision %d (%s)", d.Previous.RevisionID, d.Previous.Version)
	v.DiffSame = d.Diff.IsEmpty()
	add := func(class, label string, cs []contract.Change) {
		for _, c := range cs {
			v.Diff = append(v.Diff, diffRow{Class: class, Label: label, Detail: c.Detail})
		}
	}
	add("bad", "breaking", d.Diff.Breaking)
	add("good", "added", d.Diff.Additions)
	add("warn", "unjudged", d.Diff.Unjudged)
}

func (v *serverView) backups(d *Detail, redact func(string) string, now time.Time) {
	for _, b := range d.Backups {
		v.Backups = append(v.Backups, backupRow{ID: b.ID, Trigger: b.Trigger, Outcome: b.Outcome, Class: outcomeClass(b.Outcome),
			Version: b.Version, Size: reconcile.HumanBytes(b.Size), Took: durText(b.StartedAt, b.FinishedAt),
			When: ago(b.FinishedAt, now), At: stamp(b.FinishedAt), Error: redact(b.Error)})
	}
	if dr := d.LastDrill; dr != nil {
		v.Drill = fmt.Sprintf("%s %s (backup %s)", dr.Outcome, ago(dr.FinishedAt, now), dr.BackupID)
		if dr.Message != "" {
			v.Drill += ": " + redact(dr.Message)
		}
	}
	if dr := d.LastPassedDrill; dr != nil {
		v.Passed = fmt.Sprintf("%s (backup %s)", ago(dr.FinishedAt, now), dr.BackupID)
	}
	if d.Status != nil && d.Status.Backup != nil {
		if t := d.Status.Backup.Next; !t.IsZero() {
			v.NextBackup = ago(t, now)
		}
		if t := d.Status.Backup.NextDrill; !t.IsZero() {
			v.NextDrill = ago(t, now)
		}
	}
}

// checkTarget says what a check looks at, without a secret (exec commands
// and headers may hold one: they are not shown).
func checkTarget(c *spec.Check) string {
	switch {
	case c.HTTP != nil:
		return strings.TrimSpace(fmt.Sprintf("%s %s port %s", c.HTTP.Method, c.HTTP.Path, c.HTTP.Port))
	case c.TCP != nil:
		return "port " + c.TCP.Port
	case c.MCP != nil:
		t := fmt.Sprintf("%s %s port %s", c.MCP.Transport, c.MCP.Path, c.MCP.Port)
		if len(c.MCP.Tools) > 0 {
			t += ", tools " + strings.Join(c.MCP.Tools, ", ")
		}
		return t
	case c.Exec != nil:
		return fmt.Sprintf("a command (%d words)", len(c.Exec.Command))
	}
	return ""
}

func durText(a, b time.Time) string {
	if a.IsZero() || b.IsZero() || b.Before(a) {
		return ""
	}
	d := b.Sub(a)
	if d < time.Second {
		return fmt.Sprintf("%d ms", d.Milliseconds())
	}
	return d.Round(100 * time.Millisecond).String()
}
