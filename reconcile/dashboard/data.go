package dashboard

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/tendhq/tend/reconcile"
	"github.com/tendhq/tend/reconcile/contract"
	"github.com/tendhq/tend/reconcile/state"
	"github.com/tendhq/tend/spec"
)

// Data is what the dashboard reads and asks of the daemon. LoopData is the
// daemon's; tests may stand a fake beside it.
type Data interface {
	// Fleet is the status of every server, as /api/v1/status reports it.
	Fleet(ctx context.Context) (*Fleet, error)
	// Server is one server's page; ErrUnknownServer when it has none.
	Server(ctx context.Context, name string) (*Detail, error)
	// Subscribe returns the loop's events (see reconcile.Loop.Subscribe).
	Subscribe(buf int) (<-chan reconcile.LoopEvent, func(), bool)
	// Trigger asks for a pass; Do runs a job through the loop's queue.
	Trigger(reason string)
	Do(ctx context.Context, kind, server string, to int64) (string, error)
	// Decide approves or rejects the change of server that the plan of
	// revision makes (see reconcile.Loop.Decide).
	Decide(ctx context.Context, server, revision, by, note string, reject bool) (string, error)
	// Redact hides every secret of the desired state in msg.
	Redact(msg string) string
}

// ErrUnknownServer: the desired state and the store know no such server.
var ErrUnknownServer = errors.New("no such server")

// Fleet is what the fleet page shows.
type Fleet struct {
	Daemon reconcile.LoopStatus
	// Revision is the desired revision the statuses are planned from.
	Revision string
	Servers  []reconcile.ServerStatus
}

// Detail is what a server page shows beyond its status.
type Detail struct {
	Status   *reconcile.ServerStatus
	Revision string // the desired revision, as in Fleet
	Daemon   reconcile.LoopStatus
	Server   *spec.Server // nil when the desired state no longer has it
	History  []state.Revision
	// Plan is the next apply of this server, as `tend plan` prints it;
	// PlanError says why there is none.
	Plan, PlanError string
	// Contract is the tools and more of the newest verified revision;
	// Diff what changed from the one before (Previous).
	Contract         *contract.Contract
	ContractRevision int64
	Previous         *state.Contract
	Diff             *contract.Diff
	Backups          []state.Backup
	LastDrill        *state.Drill
	LastPassedDrill  *state.Drill
	Decisions        []state.ScaleDecision
}

// Bounds of what a page reads.
const (
	historyRows  = 50
	backupRows   = 20
	decisionRows = 20
	// statusTTL: one status (a plan and an observe of every provider)
	// serves every page and fragment asked for within it.
	statusTTL = time.Second
	planTTL   = 2 * time.Second
	readLimit = 20 * time.Second
)

// LoopData is Data over the daemon's loop and engine. Status and plans are
// computed once per statusTTL and planTTL whatever the number of viewers,
// one at a time, each bounded by readLimit.
type LoopData struct {
	Loop   *reconcile.Loop
	Engine *reconcile.Engine

	mu       sync.Mutex
	fleet    *Fleet
	fleetAt  time.Time
	fleetSrc string
	planMu   sync.Mutex
	plan     *reconcile.Plan
	planAt   time.Time
	planSrc  string
}

var _ Data = (*LoopData)(nil)

// Fleet implements Data.
func (d *LoopData) Fleet(ctx context.Context) (*Fleet, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	src := d.Loop.LastGood()
	daemon := d.Loop.Status()
	// A pass that ended since makes the cached status old at once.
	rev := fmt.Sprintf("%d %d", daemon.Passes, daemon.LastPass.UnixNano())
	if src != nil {
		rev += " " + src.Revision
	}
	if d.fleet != nil && rev == d.fleetSrc && time.Since(d.fleetAt) < statusTTL {
		f := *d.fleet
		f.Daemon = daemon
		return &f, nil
	}
	f := &Fleet{Daemon: daemon}
	if src != nil {
		f.Revision = src.Revision
		ctx, cancel := context.WithTimeout(ctx, readLimit)
		defer cancel()
		sts, err := d.Engine.Status(ctx, src)
		if err != nil {
			return nil, err
		}
		f.Servers = sts
	}
	d.fleet, d.fleetAt, d.fleetSrc = f, time.Now(), rev
	return f, nil
}

// nextPlan is the plan of the next apply from the last good revision.
func (d *LoopData) nextPlan(ctx context.Context, src *reconcile.Source) (*reconcile.Plan, error) {
	d.planMu.Lock()
	defer d.planMu.Unlock()
	if d.plan != nil && d.planSrc == src.Revision && time.Since(d.planAt) < planTTL {
		return d.plan, nil
	}
	ctx, cancel := context.WithTimeout(ctx, readLimit)
	defer cancel()
	p, err := d.Engine.Plan(ctx, src)
	if err != nil {
		return nil, err
	}
	d.plan, d.planAt, d.planSrc = p, time.Now(), src.Revision
	return p, nil
}

// Server implements Data.
func (d *LoopData) Server(ctx context.Context, name string) (*Detail, error) {
	f, err := d.Fleet(ctx)
	if err != nil {
		return nil, err
	}
	det := &Detail{Daemon: f.Daemon, Revision: f.Revision}
	for i := range f.Servers {
		if f.Servers[i].Server == name {
			det.Status = &f.Servers[i]
		}
	}
	src := d.Loop.LastGood()
	if src != nil {
		det.Server = src.Config.Servers[name]
	}
	st := d.Engine.Store
	if det.History, err = st.History(name, historyRows); err != nil {
		return nil, err
	}
	if det.Status == nil && det.Server == nil && len(det.History) == 0 {
		return nil, ErrUnknownServer
	}
	if src != nil {
		d.planOf(ctx, src, name, det)
	}
	if err := d.contractOf(name, det); err != nil {
		return nil, err
	}
	if det.Backups, err = st.Backups(name, backupRows); err != nil {
		return nil, err
	}
	last, passed, err := st.LatestDrills()
	if err != nil {
		return nil, err
	}
	det.LastDrill, det.LastPassedDrill = last[name], passed[name]
	if det.Decisions, err = st.ScaleDecisions(name, decisionRows); err != nil {
		return nil, err
	}
	return det, nil
}

// planOf renders the server's part of the next plan.
func (d *LoopData) planOf(ctx context.Context, src *reconcile.Source, name string, det *Detail) {
	p, err := d.nextPlan(ctx, src)
	if err != nil {
		det.PlanError = "the plan could not be made: " + d.Redact(err.Error())
		return
	}
	for _, c := range p.Changes {
		if c.Server != name {
			continue
		}
		var buf bytes.Buffer
		one := *p
		one.Changes = []*reconcile.ServerChange{c}
		reconcile.RenderPlan(&buf, &one, false)
		det.Plan = d.Redact(buf.String())
		return
	}
	det.PlanError = "the desired state has no change for this server"
}

// contractOf reads the two newest verified contracts and compares them.
func (d *LoopData) contractOf(name string, det *Detail) error {
	cs, err := d.Engine.Store.RecentContracts(name, 2)
	if err != nil || len(cs) == 0 {
		return err
	}
	var cur contract.Contract
	if json.Unmarshal(cs[0].Contract, &cur) != nil {
		return nil
	}
	det.Contract, det.ContractRevision = &cur, cs[0].RevisionID
	if len(cs) > 1 {
		var prev contract.Contract
		if json.Unmarshal(cs[1].Contract, &prev) == nil {
			diff := contract.Compare(&prev, &cur)
			det.Previous, det.Diff = &cs[1], &diff
		}
	}
	return nil
}

// Subscribe implements Data.
func (d *LoopData) Subscribe(buf int) (<-chan reconcile.LoopEvent, func(), bool) {
	return d.Loop.Subscribe(buf)
}

// Trigger implements Data.
func (d *LoopData) Trigger(reason string) { d.Loop.Trigger(reason) }

// Do implements Data.
func (d *LoopData) Do(ctx context.Context, kind, server string, to int64) (string, error) {
	msg, err := d.Loop.Do(ctx, kind, server, to)
	d.mu.Lock()
	d.fleet = nil // the next page shows what the job did
	d.mu.Unlock()
	return msg, err
}

// Decide implements Data.
func (d *LoopData) Decide(ctx context.Context, server, revision, by, note string, reject bool) (string, error) {
	a, err := d.Loop.Decide(ctx, reconcile.Decision{Server: server, Revision: revision, By: by, Note: note, Reject: reject})
	d.mu.Lock()
	d.fleet = nil
	d.mu.Unlock()
	if err != nil {
		return "", err
	}
	return reconcile.DecisionMessage(a), nil
}

// Redact implements Data.
func (d *LoopData) Redact(msg string) string {
	src := d.Loop.LastGood()
	if src == nil {
		return msg
	}
	return reconcile.Redact(src.Config, msg)
}
