package reconcile

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/tendhq/tend/spec"
)

// Window actions.
const (
	windowAllow = "allow"
	windowDeny  = "deny"
)

// windowSpan is how far back and ahead window times are looked for: a
// window whose schedule never fires within a year is never open.
const windowSpan = 366 * 24 * time.Hour

// maxOverlaps bounds how many overlapping openings windowState follows to
// find where an open window closes (a plan pays for each).
const maxOverlaps = 2000

// windowGate decides, from the config's window blocks, whether changes to
// servers may be applied now. A deny window that is open and covers a
// server stops its changes until it closes; a server covered by allow
// windows changes only while one of them is open. Deny wins over allow.
type windowGate struct {
	now     time.Time
	windows []*gateWindow
}

type gateWindow struct {
	w        *spec.Window
	sched    cron.Schedule
	loc      *time.Location
	servers  map[string]bool // nil: every server
	open     bool
	boundary time.Time // when it closes (open) or next opens (closed); zero: never
	atLeast  bool      // open at least until boundary: its openings overlap on
}

func newWindowGate(cfg *spec.Config, now time.Time) *windowGate {
	g := &windowGate{now: now}
	names := make([]string, 0, len(cfg.Windows))
	for n := range cfg.Windows {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		w := cfg.Windows[n]
		sched, err := spec.ParseSchedule(w.Schedule)
		if err != nil || w.Duration <= 0 {
			continue // the spec refuses these; nothing to enforce
		}
		loc := time.UTC
		if w.Timezone != "" {
			if l, err := time.LoadLocation(w.Timezone); err == nil {
				loc = l
			}
		}
		gw := &gateWindow{w: w, sched: sched, loc: loc}
		if len(w.Servers) > 0 {
			gw.servers = map[string]bool{}
			for _, r := range w.Servers {
				gw.servers[r.Name] = true
			}
		}
		gw.open, gw.boundary, gw.atLeast = windowState(sched, w.Duration, now.In(loc))
		g.windows = append(g.windows, gw)
	}
	return g
}

// windowState says whether a window that opens at sched's times and stays
// open for d is open at t, and when that changes: its close when open, its
// next opening when closed (zero when it never opens within windowSpan).
// atLeast says an open window's close is only a lower bound: its openings
// overlap past maxOverlaps.
func windowState(sched cron.Schedule, d time.Duration, t time.Time) (open bool, boundary time.Time, atLeast bool) {
	// The first opening after t-d is at or before t exactly when the window
	// is open at t (windows are open on [opening, opening+d)).
	first := sched.Next(t.Add(-d))
	if first.IsZero() || first.After(t) {
		next := sched.Next(t)
		if next.IsZero() || next.Sub(t) > windowSpan {
			return false, time.Time{}, false
		}
		return false, next, false
	}
	// Open: it closes d after its last opening that is not after t, and
	// later when openings overlap. Openings that keep overlapping (every
	// minute for two minutes) are followed for maxOverlaps steps: the
	// window is open at least until then, and is looked at again then.
	end := first.Add(d)
	steps := 0
	for a := sched.Next(first); !a.IsZero() && a.Before(end); a = sched.Next(a) {
		if end.Sub(t) >= windowSpan {
			return true, time.Time{}, false // it does not close within a year
		}
		if steps++; steps > maxOverlaps {
			return true, end, true
		}
		end = a.Add(d)
	}
	return true, end, false
}

func (gw *gateWindow) covers(server string) bool {
	return gw.servers == nil || gw.servers[server]
}

// check returns "" when server may change now; otherwise why not, and when
// that may change (zero when no window will let it).
func (g *windowGate) check(server string) (string, time.Time) {
	if g == nil {
		return "", time.Time{}
	}
	var allows []*gateWindow
	for _, gw := range g.windows {
		if !gw.covers(server) {
			continue
		}
		switch gw.w.Action {
		case windowDeny, "":
			if gw.open && gw.boundary.IsZero() {
				return fmt.Sprintf("waiting: the deny window %q is open, and does not close within a year", gw.w.Name), time.Time{}
			}
			if gw.open {
				until := "until"
				if gw.atLeast {
					until = "until at least"
				}
				return fmt.Sprintf("waiting: the deny window %q is open %s %s", gw.w.Name, until, stamp(gw.boundary, gw.loc)), gw.boundary
			}
		case windowAllow:
			allows = append(allows, gw)
		}
	}
	if len(allows) == 0 {
		return "", time.Time{}
	}
	var names []string
	var next *gateWindow
	for _, gw := range allows {
		if gw.open {
			return "", time.Time{}
		}
		names = append(names, fmt.Sprintf("%q", gw.w.Name))
		if !gw.boundary.IsZero() && (next == nil || gw.boundary.Before(next.boundary)) {
			next = gw
		}
	}
	what := "the allow window " + names[0]
	if len(names) > 1 {
		what = "none of the allow windows " + strings.Join(names, ", ")
	}
	if next == nil {
		return fmt.Sprintf("waiting: %s is not open, and does not open within a year", what), time.Time{}
	}
	if len(names) > 1 {
		return fmt.Sprintf("waiting: %s is open; %q opens next, at %s", what, next.w.Name, stamp(next.boundary, next.loc)), next.boundary
	}
	return fmt.Sprintf("waiting: %s is not open; it opens at %s", what, stamp(next.boundary, next.loc)), next.boundary
}

func stamp(t time.Time, loc *time.Location) string {
	s := t.In(loc).Format("2006-01-02 15:04 MST")
	if loc != time.UTC {
		s += " (" + t.UTC().Format("15:04 UTC") + ")"
	}
	return s
}

// hold turns a change that changes the desired revision (a create, update,
// replace, scale or delete) into ActionWaiting while the windows say not
// now. Heals and verifications go on: they keep what was applied.
func (g *windowGate) hold(c *ServerChange) {
	if g == nil {
		return
	}
	switch c.Action {
	case ActionCreate, ActionUpdate, ActionReload, ActionReplace, ActionScale, ActionDelete:
	default:
		return
	}
	why, until := g.check(c.Server)
	if why == "" {
		return
	}
	c.Waits, c.WaitUntil = c.Action, until.UTC()
	c.Action = ActionWaiting
	c.WaitsFor = []string{WaitWindow}
	c.Reasons = append([]string{why + " (tend apply -ignore-windows applies it now)"}, c.Reasons...)
	// Replicas that failed are not left down for the length of a window:
	// they are healed on what runs (the last verified revision).
	if c.Waits != ActionCreate && c.Waits != ActionDelete && len(c.failed) > 0 {
		c.HealInWindow = append([]int(nil), c.failed...)
		verb := "are"
		if len(c.HealInWindow) == 1 {
			verb = "is"
		}
		c.Reasons = append(c.Reasons, fmt.Sprintf("meanwhile %s %s healed on the last verified revision", replicaNames(c.HealInWindow), verb))
	}
}

// replicaNames is "replica 1" or "replicas 1, 2".
func replicaNames(rs []int) string {
	if len(rs) == 1 {
		return fmt.Sprintf("replica %d", rs[0])
	}
	return "replicas " + joinInts(rs)
}
