package dashboard

import (
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tendhq/tend/providers"
	"github.com/tendhq/tend/reconcile"
	"github.com/tendhq/tend/reconcile/state"
)

// row is one server of the fleet page, every value ready to print.
type row struct {
	Name, Link       string
	Provider, Hosts  string
	Desired, Live    string
	Replicas         string
	Scaling          string
	Health           string
	Dots             []dot
	Drift            []string
	Held             []string
	Pending          string
	Waiting          bool
	WaitsFor         []string // window, approval, promotion
	WaitsApproval    bool
	LastOutcome      string
	LastWhen         string
	LastAt           string
	LastTrigger      string
	LastMessage      string
	Backup, BackupAt string
	BackupClass      string
	States           []string // what the state filter matches
}

// dot is one replica's health.
type dot struct {
	Class, Title string
}

// filter is the fleet page's query.
type filter struct {
	Provider, Host, State string
}

func (f filter) match(r *row) bool {
	if f.Provider != "" && r.Provider != f.Provider {
		return false
	}
	if f.Host != "" && !containsWord(r.Hosts, f.Host) {
		return false
	}
	if f.State != "" {
		for _, s := range r.States {
			if s == f.State {
				return true
			}
		}
		return false
	}
	return true
}

func (f filter) Query() string {
	q := url.Values{}
	for k, v := range map[string]string{"provider": f.Provider, "host": f.Host, "state": f.State} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if len(q) == 0 {
		return ""
	}
	return "?" + q.Encode()
}

func containsWord(list, w string) bool {
	for _, s := range strings.Split(list, ", ") {
		if s == w {
			return true
		}
	}
	return false
}

// stateNames are the states the filter offers, in order.
var stateNames = []string{"healthy", "degraded", "down", "missing", "orphan", "drifted", "held", "waiting", "pending", "failed"}

// fleetView is the fleet page's data.
type fleetView struct {
	Rows                 []*row
	Total                int
	Filter               filter
	Providers, Hosts     []string
	States               []string
	Counts               []count
	Daemon               reconcile.LoopStatus
	DaemonNote, DaemonOK string
}

type count struct {
	State string
	N     int
	Query string
}

func newFleetView(f *Fleet, flt filter, redact func(string) string, now time.Time) *fleetView {
	v := &fleetView{Filter: flt, States: stateNames, Daemon: f.Daemon, Total: len(f.Servers)}
	provs, hosts, byState := map[string]bool{}, map[string]bool{}, map[string]int{}
	for i := range f.Servers {
		r := newRow(&f.Servers[i], redact, now, rowText)
		provs[r.Provider] = true
		for _, h := range strings.Split(r.Hosts, ", ") {
			if h != "" {
				hosts[h] = true
			}
		}
		for _, s := range r.States {
			byState[s]++
		}
		if flt.match(r) {
			v.Rows = append(v.Rows, r)
		}
	}
	v.Providers, v.Hosts = sortedKeys(provs), sortedKeys(hosts)
	for _, s := range stateNames {
		if n := byState[s]; n > 0 {
			v.Counts = append(v.Counts, count{State: s, N: n, Query: filter{State: s}.Query()})
		}
	}
	return v
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func newRow(s *reconcile.ServerStatus, redact func(string) string, now time.Time, limit int) *row {
	cut := func(msg string) string { return shorten(redact(msg), limit) }
	r := &row{
		Name: s.Server, Link: "/servers/" + url.PathEscape(s.Server), Provider: s.Provider,
		Desired: orDash(s.DesiredVersion), Live: orDash(strings.Join(s.LiveVersions, ", ")),
		Replicas: fmt.Sprintf("%d/%d", s.Running, s.DesiredReplicas), Health: s.Health,
		Pending: cut(s.Pending),
	}
	r.States = append(r.States, s.Health)
	hosts := map[string]bool{}
	for _, in := range s.Instances {
		hosts[in.Host] = true
		r.Dots = append(r.Dots, dot{Class: instanceClass(in), Title: instanceTitle(in)})
	}
	r.Hosts = strings.Join(sortedKeys(hosts), ", ")
	if sc := s.Scaling; sc != nil {
		r.Scaling = fmt.Sprintf("%s scales %d–%d", sc.By, sc.Min, sc.Max)
		if sc.Autoscaled > 0 {
			r.Scaling += fmt.Sprintf(", now %d", sc.Autoscaled)
		}
	}
	for _, d := range s.Drift {
		r.Drift = append(r.Drift, cut(d))
	}
	if len(r.Drift) > 0 {
		r.States = append(r.States, "drifted")
	}
	for _, h := range s.Held {
		r.Held = append(r.Held, cut(fmt.Sprintf("%s held: %s", orDash(h.Version), h.Reason)))
	}
	if len(r.Held) > 0 {
		r.States = append(r.States, "held")
		if limit > 0 && strings.HasPrefix(s.Pending, "held") {
			r.Pending = "" // the holds say it; the server page has both
		}
	}
	if s.Pending != "" {
		r.WaitsFor = s.WaitsFor
		for _, w := range s.WaitsFor {
			if w == reconcile.WaitApproval {
				r.WaitsApproval = true
			}
		}
		switch {
		case s.Waiting || len(s.WaitsFor) > 0:
			r.Waiting = true
			r.States = append(r.States, "waiting")
		case !strings.HasPrefix(s.Pending, "held"):
			r.States = append(r.States, "pending")
		}
	}
	if lr := s.LastRevision; lr != nil {
		r.LastOutcome, r.LastTrigger, r.LastMessage = string(lr.Outcome), lr.Trigger, cut(lr.Message)
		at := lr.FinishedAt
		if at.IsZero() {
			at = lr.StartedAt
		}
		r.LastWhen, r.LastAt = ago(at, now), stamp(at)
		if lr.Outcome != state.OutcomeVerified && lr.Outcome != state.OutcomePending && lr.Outcome != state.OutcomeDeleted {
			r.States = append(r.States, "failed")
		}
	}
	if b := s.Backup; b != nil {
		switch {
		case b.Last != nil && b.Last.Outcome != "ok" && (b.LastGood == nil || b.Last.ID != b.LastGood.ID):
			r.Backup, r.BackupAt, r.BackupClass = "failed "+ago(b.Last.FinishedAt, now), stamp(b.Last.FinishedAt), "bad"
		case b.LastGood != nil:
			r.Backup, r.BackupAt, r.BackupClass = ago(b.LastGood.FinishedAt, now), stamp(b.LastGood.FinishedAt), "good"
		default:
			r.Backup, r.BackupClass = "none yet", "warn"
		}
	}
	return r
}

func instanceClass(in providers.Instance) string {
	switch {
	case in.State != providers.StateRunning:
		return "bad"
	case len(in.Drift) > 0:
		return "warn"
	}
	return "good"
}

func instanceTitle(in providers.Instance) string {
	t := fmt.Sprintf("replica %d: %s", in.Replica, in.State)
	if in.Version != "" {
		t += ", " + in.Version
	}
	if in.Restarts > 0 {
		t += fmt.Sprintf(", %d restarts", in.Restarts)
	}
	return t
}

// rowText bounds each message of a fleet row, in runes; the server page
// shows them whole.
const rowText = 160

// shorten cuts s to its first line and at most limit runes (0: no limit).
func shorten(s string, limit int) string {
	if limit <= 0 {
		return s
	}
	cut := false
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s, cut = s[:i], true
	}
	if r := []rune(s); len(r) > limit {
		s, cut = string(r[:limit]), true
	}
	if cut {
		s = strings.TrimRight(s, " ") + "…"
	}
	return s
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

// ago says how long ago t was, for a person.
func ago(t, now time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := now.Sub(t)
	switch {
	case d < 0:
		return "in " + roundDur(-d)
	case d < 5*time.Second:
		return "just now"
	}
	return roundDur(d) + " ago"
}

func roundDur(d time.Duration) string {
	switch {
	case d < time.Minute:
		return strconv.Itoa(int(d.Seconds())) + "s"
	case d < time.Hour:
		return strconv.Itoa(int(d.Minutes())) + "m"
	case d < 48*time.Hour:
		return strconv.Itoa(int(d.Hours())) + "h"
	}
	return strconv.Itoa(int(d.Hours()/24)) + "d"
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}
