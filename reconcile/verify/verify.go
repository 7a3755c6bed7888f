package verify

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tendhq/tend/spec"
)

// Options says what to verify and for how long.
type Options struct {
	Checks    []*spec.Check
	Targets   []Target
	VerifyFor time.Duration // how long every check must pass without a break
	Deadline  time.Duration // progress_deadline; 0 waits for ctx alone
	// FailAfter ends verification without waiting for the deadline once
	// a (check, replica) that is not passing has given the same definite
	// answer (see Definite) this many times in a row: an answer such as a
	// missing MCP tool or a wrong version does not change by waiting.
	// 0 waits for the deadline.
	FailAfter int
	Exec      ExecFunc
	// Stdio runs the command of stdio MCP checks.
	Stdio StdioFunc
	// Version is the version the server should now run; an mcp check with
	// check_version compares it to serverInfo.version. Empty: not compared.
	Version string
	// Alive is called on every tick; a non-nil error fails verification at
	// once (the provider saw a replica exit or crash-loop). May be nil.
	Alive func(ctx context.Context) error
	// Progress, if set, receives every probe result (for the person
	// watching). It is called from one goroutine at a time, never after
	// Verify returned.
	Progress func(Result)
	// Now stamps results and measures durations; nil means time.Now.
	// Waiting always uses real timers.
	Now func() time.Time
}

// Result is the outcome of one probe of one check on one replica.
type Result struct {
	Check   string
	Replica int
	OK      bool
	Message string // why it failed; empty when OK
	// Definite is set for a failure that waiting will not change (see
	// Definite).
	Definite bool
	At       time.Time
}

// Outcome is what Verify concluded.
type Outcome struct {
	Verified bool
	// Reason says why not: the Alive error, "cancelled", the check that
	// gave the same definite answer FailAfter times in a row, or which
	// checks did not pass within the deadline, and what they saw.
	Reason   string
	Duration time.Duration
	// Results holds the last result of every (check, replica), in check then
	// target order; a pair never probed has OK false and "not probed yet".
	Results []Result
}

// notProbed is the message of a pair without a probe so far.
const notProbed = "not probed yet"

// maxReasons is how many failing pairs a deadline reason names.
const maxReasons = 5

// pair is the state of one (check, replica).
type pair struct {
	check   *spec.Check
	order   int // index of the check in Options.Checks
	target  Target
	prober  Prober
	succ    int // consecutive passes
	fail    int // consecutive failures
	same    int // consecutive definite failures with the same message
	passing bool
	probed  bool
	last    Result
	lastBad *Result // the last failed result, if any
}

func (p *pair) successThreshold() int { return max(p.check.SuccessThreshold, 1) }
func (p *pair) failureThreshold() int { return max(p.check.FailureThreshold, 1) }

// record applies one result and reports whether the pair changed state.
func (p *pair) record(r Result) (changed bool) {
	switch {
	case !r.Definite:
		p.same = 0
	case p.same > 0 && p.last.Message == r.Message:
		p.same++
	default:
		p.same = 1
	}
	p.probed = true
	p.last = r
	was := p.passing
	if r.OK {
		p.succ++
		p.fail = 0
		if p.succ >= p.successThreshold() {
			p.passing = true
		}
	} else {
		bad := r
		p.lastBad = &bad
		p.fail++
		p.succ = 0
		if p.fail >= p.failureThreshold() {
			p.passing = false
		}
	}
	return p.passing != was
}

func (p *pair) name() string {
	return fmt.Sprintf("check %q on replica %d", p.check.Name, p.target.Replica)
}

// describe says why a pair is not passing.
func (p *pair) describe() string {
	switch {
	case !p.probed:
		if p.check.InitialDelay > 0 {
			return fmt.Sprintf("%s: %s (initial_delay %s)", p.name(), notProbed, shortDuration(p.check.InitialDelay))
		}
		return p.name() + ": " + notProbed
	case !p.last.OK:
		return p.name() + ": " + p.last.Message
	}
	s := fmt.Sprintf("%s: passed %d of the %d times in a row needed", p.name(), p.succ, p.successThreshold())
	if p.lastBad != nil {
		s += "; last failure: " + p.lastBad.Message
	}
	return s
}

// settled says what a pair that gave the same definite answer FailAfter
// times in a row saw, and that verification does not wait for the deadline.
func (p *pair) settled(o Options) string {
	wait := "not waiting for it to change"
	if o.Deadline > 0 {
		wait = fmt.Sprintf("not waiting for the %s deadline", shortDuration(o.Deadline))
	}
	return fmt.Sprintf("%s failed the same way %d times in a row; %s: %s", p.name(), p.same, wait, p.last.Message)
}

type pairResult struct {
	pair int
	r    Result
}

// Verify probes every check on every target until the server has passed all
// of them continuously for VerifyFor (verified), or the deadline passes, Alive
// reports a dead replica, or ctx ends (not verified). It returns only after
// every probe it started has finished.
func Verify(ctx context.Context, o Options) Outcome {
	now := o.Now
	if now == nil {
		now = time.Now
	}
	start := now()

	var pairs []*pair
	for i, c := range o.Checks {
		if c == nil {
			continue
		}
		p, err := NewProber(c, o.Exec, WithVersion(o.Version), WithStdio(o.Stdio))
		if err != nil {
			return Outcome{Reason: err.Error(), Duration: now().Sub(start)}
		}
		for _, t := range o.Targets {
			pairs = append(pairs, &pair{check: c, order: i, target: t, prober: p})
		}
	}
	finish := func(verified bool, reason string) Outcome {
		out := Outcome{Verified: verified, Reason: reason, Duration: now().Sub(start)}
		for _, p := range pairs {
			if p.probed {
				out.Results = append(out.Results, p.last)
			} else {
				out.Results = append(out.Results, Result{Check: p.check.Name, Replica: p.target.Replica, Message: notProbed})
			}
		}
		return out
	}
	if ctx.Err() != nil {
		return finish(false, "cancelled")
	}
	alive := func() (string, bool) {
		if o.Alive == nil {
			return "", true
		}
		if err := o.Alive(ctx); err != nil {
			if ctx.Err() != nil {
				return "cancelled", false
			}
			return err.Error(), false
		}
		return "", true
	}
	if reason, ok := alive(); !ok {
		return finish(false, reason)
	}

	// When Verify is done, the pairs start no new probe, and a probe in
	// flight gets up to drainFor to finish before it is cut: a request
	// cut halfway reaches the server as a broken one (an MCP server logs
	// a 400 for the half of a POST that the API server's proxy forwarded).
	runCtx, stop := context.WithCancel(ctx)
	over := make(chan struct{})
	var wg sync.WaitGroup
	defer func() {
		close(over)
		drained := make(chan struct{})
		go func() { wg.Wait(); close(drained) }()
		t := time.NewTimer(drainFor)
		defer t.Stop()
		select {
		case <-drained:
		case <-t.C:
		}
		stop()
		<-drained // no probe outlives Verify
	}()
	results := make(chan pairResult, len(pairs))
	for i, p := range pairs {
		wg.Go(func() { runPair(runCtx, over, i, p, results, now) })
	}

	tick := time.NewTicker(tickEvery(o, pairs))
	defer tick.Stop()
	var deadline <-chan time.Time
	if o.Deadline > 0 {
		t := time.NewTimer(o.Deadline)
		defer t.Stop()
		deadline = t.C
	}

	// The verification clock: armed while every pair passes.
	var (
		clock        *time.Timer
		clockC       <-chan time.Time
		passingSince time.Time
		resetBy      *Result // the failure that last stopped the clock
	)
	stopClock := func() {
		if clock != nil {
			clock.Stop()
		}
		clock, clockC = nil, nil
	}
	defer stopClock()
	allPassing := func() bool {
		for _, p := range pairs {
			if !p.passing {
				return false
			}
		}
		return true
	}
	// startClock returns true when verification is already complete.
	startClock := func() bool {
		passingSince = now()
		if o.VerifyFor <= 0 {
			return true
		}
		clock = time.NewTimer(o.VerifyFor)
		clockC = clock.C
		return false
	}
	verified := func() Outcome {
		if reason, ok := alive(); !ok {
			return finish(false, reason)
		}
		return finish(true, "")
	}

	if len(pairs) == 0 && startClock() {
		return verified()
	}
	for {
		select {
		case <-ctx.Done():
			return finish(false, "cancelled")
		case <-deadline:
			return finish(false, deadlineReason(o, pairs, clock != nil, now().Sub(passingSince), resetBy))
		case <-tick.C:
			if reason, ok := alive(); !ok {
				return finish(false, reason)
			}
		case <-clockC:
			return verified()
		case pr := <-results:
			p := pairs[pr.pair]
			changed := p.record(pr.r)
			if o.Progress != nil {
				o.Progress(pr.r)
			}
			if o.FailAfter > 0 && !p.passing && p.same >= o.FailAfter {
				return finish(false, p.settled(o))
			}
			if !changed {
				continue
			}
			if !p.passing {
				if clock != nil {
					r := pr.r
					resetBy = &r
				}
				stopClock()
				continue
			}
			if clock == nil && allPassing() && startClock() {
				return verified()
			}
		}
	}
}

// runPair probes one (check, replica) every interval, after the initial
// delay, until ctx ends.
func runPair(ctx context.Context, over <-chan struct{}, idx int, p *pair, out chan<- pairResult, now func() time.Time) {
	interval := p.check.Interval
	if interval <= 0 {
		interval = spec.DefaultCheckInterval
	}
	if !sleep(ctx, over, p.check.InitialDelay) {
		return
	}
	for {
		began := time.Now()
		err := p.prober.Probe(ctx, p.target)
		if ctx.Err() != nil || isClosed(over) {
			return // verification is over; this probe means nothing
		}
		r := Result{Check: p.check.Name, Replica: p.target.Replica, OK: err == nil, At: now()}
		if err != nil {
			r.Message, r.Definite = err.Error(), Definite(err)
		}
		select {
		case out <- pairResult{idx, r}:
		case <-ctx.Done():
			return
		case <-over:
			return
		}
		if !sleep(ctx, over, interval-time.Since(began)) {
			return
		}
	}
}

// drainFor is how long a probe in flight when Verify ends may take to
// finish before it is cancelled.
const drainFor = 2 * time.Second

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// sleep waits for d, or until ctx ends or over is closed (false).
func sleep(ctx context.Context, over <-chan struct{}, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil && !isClosed(over)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-over:
		return false
	case <-ctx.Done():
		return false
	}
}

// tickEvery is how often Alive is asked: as often as the most frequent
// check, at most every second; without checks, often enough to notice an
// exit within a tenth of VerifyFor.
func tickEvery(o Options, pairs []*pair) time.Duration {
	d := time.Second
	if len(pairs) == 0 {
		if o.VerifyFor > 0 {
			d = min(d, o.VerifyFor/10)
		}
	}
	for _, p := range pairs {
		if p.check.Interval > 0 {
			d = min(d, p.check.Interval)
		}
	}
	return max(d, 10*time.Millisecond)
}

// deadlineReason explains a verification that ran out of time, most useful
// first: pairs that are failing, the longest-failing first, then pairs that
// are recovering or were not probed.
func deadlineReason(o Options, pairs []*pair, clockRunning bool, passingFor time.Duration, resetBy *Result) string {
	if len(pairs) == 0 {
		return fmt.Sprintf("the server was watched for only %s of the %s verify_for when the %s deadline passed",
			shortDuration(passingFor.Round(time.Millisecond)), shortDuration(o.VerifyFor), shortDuration(o.Deadline))
	}
	lead := fmt.Sprintf("checks did not pass for %s within the %s deadline", shortDuration(o.VerifyFor), shortDuration(o.Deadline))
	if o.VerifyFor <= 0 {
		// Passing once was enough, and even that did not happen.
		lead = fmt.Sprintf("checks did not pass within the %s deadline", shortDuration(o.Deadline))
	}

	var bad []*pair
	for _, p := range pairs {
		if !p.passing {
			bad = append(bad, p)
		}
	}
	if len(bad) == 0 {
		if !clockRunning {
			return lead
		}
		s := fmt.Sprintf("%s: all passing for only %s", lead, shortDuration(passingFor.Round(time.Millisecond)))
		if resetBy != nil {
			s += fmt.Sprintf("; the clock restarted when check %q on replica %d failed: %s", resetBy.Check, resetBy.Replica, resetBy.Message)
		}
		return s
	}
	rank := func(p *pair) int {
		switch {
		case p.probed && !p.last.OK:
			return 0 // failing now
		case p.probed:
			return 1 // recovering: passes, not enough yet
		}
		return 2 // never probed
	}
	slices.SortStableFunc(bad, func(a, b *pair) int {
		return cmp.Or(
			cmp.Compare(rank(a), rank(b)),
			cmp.Compare(b.fail, a.fail),
			cmp.Compare(a.order, b.order),
			cmp.Compare(a.target.Replica, b.target.Replica),
		)
	})
	var parts []string
	for _, p := range bad[:min(len(bad), maxReasons)] {
		parts = append(parts, p.describe())
	}
	s := lead + ": " + strings.Join(parts, "; ")
	if n := len(bad) - maxReasons; n > 0 {
		s += fmt.Sprintf("; and %d more not passing", n)
	}
	return s
}

// shortDuration prints 5m rather than 5m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
