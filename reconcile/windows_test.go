package reconcile

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tendhq/tend/providers"
	"github.com/tendhq/tend/spec"
)

func mustSchedule(t *testing.T, s string) interface{ Next(time.Time) time.Time } {
	t.Helper()
	sched, err := spec.ParseSchedule(s)
	if err != nil {
		t.Fatal(err)
	}
	return sched
}

func TestWindowState(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	at := func(s string) time.Time {
		tm, err := time.ParseInLocation("2006-01-02 15:04", s, berlin)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	for _, c := range []struct {
		sched    string
		d        time.Duration
		now      string
		open     bool
		boundary string
	}{
		{"0 8 * * 1-5", 10 * time.Hour, "2026-11-24 10:00", true, "2026-11-24 18:00"},
		{"0 8 * * 1-5", 10 * time.Hour, "2026-11-24 08:00", true, "2026-11-24 18:00"},  // opens at its first minute
		{"0 8 * * 1-5", 10 * time.Hour, "2026-11-24 18:00", false, "2026-11-25 08:00"}, // and is closed at its end
		{"0 8 * * 1-5", 10 * time.Hour, "2026-11-24 07:59", false, "2026-11-24 08:00"},
		{"0 8 * * 1-5", 10 * time.Hour, "2026-11-28 12:00", false, "2026-11-30 08:00"}, // Saturday: Monday next
		// Openings that overlap keep it open until the last one ends.
		{"0 * * * *", 90 * time.Minute, "2026-11-24 10:30", true, ""},
		{"*/10 8-11 * * *", 15 * time.Minute, "2026-11-24 09:03", true, "2026-11-24 12:05"},
		// Longer than a day, across midnight.
		{"0 22 * * 5", 60 * time.Hour, "2026-11-29 03:00", true, "2026-11-30 10:00"},
	} {
		sched := mustSchedule(t, c.sched)
		open, boundary, _ := windowState(sched, c.d, at(c.now))
		if open != c.open {
			t.Errorf("%s for %s at %s: open %v, want %v", c.sched, c.d, c.now, open, c.open)
			continue
		}
		if c.boundary == "" {
			// Overlapping for good: open at least as far as maxOverlaps
			// openings reach (here, hourly: about 83 days), or for a year.
			if !open || (!boundary.IsZero() && boundary.Sub(at(c.now)) < maxOverlaps*time.Hour) {
				t.Errorf("%s for %s at %s: an always-open window closes at %s", c.sched, c.d, c.now, boundary)
			}
			continue
		}
		if !boundary.Equal(at(c.boundary)) {
			t.Errorf("%s for %s at %s: boundary %s, want %s", c.sched, c.d, c.now, boundary.In(berlin), c.boundary)
		}
	}
	// Openings every minute for two: open at least as far as maxOverlaps
	// openings reach, and cheap to find out.
	open, b, atLeast := windowState(mustSchedule(t, "* * * * *"), 2*time.Minute, at("2026-11-24 10:00"))
	if !open || !atLeast || b.Sub(at("2026-11-24 10:00")) < 24*time.Hour || b.Sub(at("2026-11-24 10:00")) > 3*24*time.Hour {
		t.Errorf("an always-open minute window: open %v until %s", open, b)
	}
	// A schedule that never fires (30 February) is never open.
	if open, b, _ := windowState(mustSchedule(t, "0 0 30 2 *"), time.Hour, at("2026-11-24 10:00")); open || !b.IsZero() {
		t.Errorf("a schedule that never fires: open %v, next %s", open, b)
	}
}

func TestWindowGate(t *testing.T) {
	cfg := &spec.Config{Windows: map[string]*spec.Window{
		"freeze":  {Name: "freeze", Schedule: "0 0 20 12 *", Duration: 14 * 24 * time.Hour, Action: "deny"},
		"db-day":  {Name: "db-day", Schedule: "0 8 * * *", Duration: 10 * time.Hour, Action: "deny", Servers: []spec.Ref{{Name: "db"}}},
		"night":   {Name: "night", Schedule: "0 22 * * *", Duration: 6 * time.Hour, Action: "allow", Servers: []spec.Ref{{Name: "web"}, {Name: "db"}}},
		"weekend": {Name: "weekend", Schedule: "0 0 * * 6", Duration: 48 * time.Hour, Action: "allow", Servers: []spec.Ref{{Name: "web"}}},
	}}
	for _, c := range []struct {
		now, server, want string
		until             string
	}{
		{"2026-11-24T12:00:00Z", "api", "", ""},
		{"2026-11-24T12:00:00Z", "db", `the deny window "db-day" is open until 2026-11-24 18:00 UTC`, "2026-11-24T18:00:00Z"},
		{"2026-11-24T23:00:00Z", "db", "", ""}, // its allow window is open, its deny window is not
		{"2026-11-24T12:00:00Z", "web", `none of the allow windows "night", "weekend" is open; "night" opens next, at 2026-11-24 22:00 UTC`, "2026-11-24T22:00:00Z"},
		{"2026-11-28T12:00:00Z", "web", "", ""}, // Saturday
		// The freeze covers everything, whatever allows it.
		{"2026-12-24T23:00:00Z", "web", `the deny window "freeze" is open until 2027-01-03 00:00 UTC`, "2027-01-03T00:00:00Z"},
		{"2026-12-24T12:00:00Z", "api", `the deny window "freeze"`, "2027-01-03T00:00:00Z"},
	} {
		now, _ := time.Parse(time.RFC3339, c.now)
		why, until := newWindowGate(cfg, now).check(c.server)
		if (c.want == "") != (why == "") || !strings.Contains(why, c.want) {
			t.Errorf("%s at %s: %q, want %q", c.server, c.now, why, c.want)
		}
		if c.until != "" && until.UTC().Format(time.RFC3339) != c.until {
			t.Errorf("%s at %s: until %s, want %s", c.server, c.now, until.UTC().Format(time.RFC3339), c.until)
		}
	}
}

func TestWindowHoldOnlyChanges(t *testing.T) {
	cfg := &spec.Config{Windows: map[string]*spec.Window{
		"always": {Name: "always", Schedule: "0 * * * *", Duration: 2 * time.Hour, Action: "deny"},
	}}
	g := newWindowGate(cfg, time.Date(2026, 11, 24, 12, 30, 0, 0, time.UTC))
	for _, a := range []Action{ActionCreate, ActionUpdate, ActionReplace, ActionScale, ActionDelete, ActionHeal, ActionVerify, ActionHeld, ActionNoop} {
		c := &ServerChange{Server: "s", Action: a}
		g.hold(c)
		wantWait := a == ActionCreate || a == ActionUpdate || a == ActionReplace || a == ActionScale || a == ActionDelete
		if (c.Action == ActionWaiting) != wantWait {
			t.Errorf("%s: became %s", a, c.Action)
		}
		if wantWait && (c.Waits != a || !strings.Contains(c.Reasons[0], "-ignore-windows")) {
			t.Errorf("%s: waits %s, reasons %q", a, c.Waits, c.Reasons)
		}
	}
	var none *windowGate
	c := &ServerChange{Server: "s", Action: ActionUpdate}
	none.hold(c)
	if c.Action != ActionUpdate {
		t.Error("no windows (or -ignore-windows) held a change")
	}
}

func TestLoopWakesForWindow(t *testing.T) {
	l := &Loop{Poll: time.Hour}
	l.windowWake = time.Now().Add(3 * time.Second)
	if d := l.nextDelay(); d < 3*time.Second || d > 5*time.Second {
		t.Errorf("next pass in %s; want the window's opening, about 4s away", d)
	}
	l.windowWake = time.Now().Add(2 * time.Hour)
	if d := l.nextDelay(); d != time.Hour {
		t.Errorf("next pass in %s; want the poll interval, before the window opens", d)
	}
}

// BenchmarkWindowGate measures what window blocks add to a plan of 5,000
// servers that all change: the gate is built once per plan (each window's
// state at the plan's time), then asked once per server.
func BenchmarkWindowGate(b *testing.B) {
	refs := make([]spec.Ref, 0, 100)
	for i := range 100 {
		refs = append(refs, spec.Ref{Name: "svc-" + strconv.Itoa(i)})
	}
	cfg := &spec.Config{Windows: map[string]*spec.Window{
		"freeze":   {Name: "freeze", Schedule: "0 0 20 12 *", Duration: 14 * 24 * time.Hour, Action: "deny"},
		"business": {Name: "business", Schedule: "0 8 * * 1-5", Duration: 10 * time.Hour, Action: "deny", Servers: refs, Timezone: "Europe/Berlin"},
		"nights":   {Name: "nights", Schedule: "0 22 * * *", Duration: 6 * time.Hour, Action: "allow", Servers: refs[:50]},
	}}
	changes := make([]ServerChange, 5000)
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	b.ReportAllocs()
	for b.Loop() {
		g := newWindowGate(cfg, now)
		for i := range changes {
			changes[i] = ServerChange{Server: "svc-" + strconv.Itoa(i), Action: ActionUpdate}
			g.hold(&changes[i])
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/5000, "ns/server")
}

// TestEngineHealsInWindow: while a freeze keeps api's upgrade back, a
// replica of api that failed is healed on what runs (the last verified
// revision), and the upgrade still waits.
func TestEngineHealsInWindow(t *testing.T) {
	h := newHarness(t)
	h.apply()
	freeze := "\nwindow \"freeze\" {\n  schedule = \"* * * * *\"\n  duration = \"2m\"\n}\n"
	f, err := os.OpenFile(filepath.Join(h.dir, "main.hcl"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(freeze); err != nil {
		t.Fatal(err)
	}
	f.Close()
	h.vars["api_version"] = "1.1.0"
	h.mem.Crash("api", 1, 137)

	c := h.plan().Change("api")
	if c.Action != ActionWaiting || !slices.Equal(c.HealInWindow, []int{1}) {
		t.Fatalf("the plan: %s, heal in window %v; want waiting, healing replica 1", c.Action, c.HealInWindow)
	}
	_, res := h.apply()
	var msg string
	for _, s := range res.Servers {
		if s.Server == "api" {
			msg = s.Outcome + " " + s.Message
		}
	}
	if !strings.HasPrefix(msg, ResultWaiting) || !strings.Contains(msg, "replica 1 healed on revision") {
		t.Fatalf("api: %s", msg)
	}
	obs := h.mem.Observe(context.Background(), providers.ObserveRequest{ManagedBy: "test", Server: "api"})
	for _, in := range obs.Instances {
		if in.State != providers.StateRunning || in.Version != "1.0.0" {
			t.Errorf("replica %d: %s %s, want 1.0.0 running", in.Replica, in.State, in.Version)
		}
	}
	c = h.plan().Change("api")
	if c.Action != ActionWaiting || len(c.HealInWindow) != 0 {
		t.Errorf("after the heal: %s, heal in window %v; want waiting and nothing to heal", c.Action, c.HealInWindow)
	}
	// With -ignore-windows the upgrade goes.
	h.eng.IgnoreWindows = true
	if _, res := h.apply(); outcome(res, "api") != ResultVerified {
		t.Errorf("the upgrade with -ignore-windows: %+v", res.Servers)
	}
}
