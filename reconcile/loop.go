package reconcile

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/robfig/cron/v3"
	"github.com/sirupsen/logrus"
	autoupdate "github.com/tendhq/tend/reconcile/update"
	"github.com/tendhq/tend/spec"
	"github.com/tendhq/tend/spec/diagtext"
)

// Fetcher gives the loop the desired state: the files of the newest
// revision, and whether they changed since the previous call.
type Fetcher interface {
	Fetch(ctx context.Context) (files map[string][]byte, revision string, changed bool, err error)
	// Describe names the source for messages (a URL without credentials, or
	// a directory).
	Describe() string
}

// DirFetcher reads a local directory on every pass.
type DirFetcher struct {
	Dir  string
	last string
}

// Fetch implements Fetcher.
func (f *DirFetcher) Fetch(context.Context) (map[string][]byte, string, bool, error) {
	files, rev, err := ReadSource(f.Dir)
	if err != nil {
		return nil, "", false, err
	}
	changed := rev != f.last
	f.last = rev
	return files, rev, changed, nil
}

// Describe implements Fetcher.
func (f *DirFetcher) Describe() string { return f.Dir }

// Peek returns the directory's current revision without consuming it.
func (f *DirFetcher) Peek(context.Context) (string, error) {
	_, rev, err := ReadSource(f.Dir)
	return rev, err
}

// LoopMetrics is what the loop reports to the metrics of the daemon.
type LoopMetrics interface {
	ObservePass(result string, d time.Duration)
	ObserveFetch(d time.Duration, err error)
	SetServer(name string, up, healthy, drifted, held bool)
	ForgetServer(name string)
	IncRollback(server string)
	ObserveApply(server string, d time.Duration)
	SetLastSuccess(t time.Time)
}

// HeldMetrics is what the loop reports of holds right after an apply, when
// its Metrics has it: a change that failed and is held shows as held in the
// same pass, not only in the next pass's plan.
type HeldMetrics interface {
	SetHeld(server string, held bool)
}

// WaitMetrics is what the loop reports of waiting changes, when its Metrics
// has it: for every server, what its change waits for (nil: nothing).
type WaitMetrics interface {
	SetWaiting(server string, waitsFor []string)
}

// BackupMetrics is what the loop reports of backups and drills, when its
// Metrics has it.
type BackupMetrics interface {
	ObserveBackup(server string, ok bool, at time.Time, d time.Duration, size int64)
	ObserveDrill(server string, ok bool, at time.Time)
}

// UsageMetrics is what the loop reports of its resource samples, when its
// Metrics has it: per server, millicores and bytes, summed over replicas.
type UsageMetrics interface {
	SetUsage(servers map[string][2]int64)
}

// ScaleMetrics is what the loop reports of autoscaling, when its Metrics
// has it.
type ScaleMetrics interface {
	SetScale(server string, desired, replicas, running int, samples map[int]map[string]float64)
	ObserveScale(server string, up bool, outcome string)
}

// LoopNotifier sends events to the notify blocks.
type LoopNotifier interface {
	Send(kind, server, version, revision, message string)
}

// Pass results.
const (
	PassApplied    = "applied"
	PassNoChange   = "no-change"
	PassHeld       = "held"    // nothing applied: the revision's changes are held, blocked behind a hold, or kept (not pruned)
	PassWaiting    = "waiting" // nothing applied: the revision's changes wait (a window, an approval, a promotion), none is held
	PassFailed     = "failed"
	PassStalled    = "stalled"
	PassFetchError = "fetch-error"
)

// LoopStatus is the daemon's own state, for /readyz, the status API and
// `tend status --remote`.
type LoopStatus struct {
	Ready        bool      `json:"ready"`
	Source       string    `json:"source"`
	Revision     string    `json:"revision,omitempty"`         // the newest revision seen
	Applied      string    `json:"applied_revision,omitempty"` // the newest revision the fleet runs in full: nothing of it held, kept or failed
	LastPass     time.Time `json:"last_pass"`
	LastSuccess  time.Time `json:"last_success"`
	LastResult   string    `json:"last_result"`
	Passes       int       `json:"passes"`
	Stalled      string    `json:"stalled,omitempty"`     // the desired state does not load; why, with positions
	FetchError   string    `json:"fetch_error,omitempty"` // the source cannot be read; the last good revision is kept
	PruneRefused string    `json:"prune_refused,omitempty"`
	Drift        []string  `json:"drift,omitempty"` // drift seen and not healed (self_heal is off)
	NextPass     time.Time `json:"next_pass"`
	// Updates is what the last run of each server's update job found
	// (automatic updates).
	Updates []UpdateStatus `json:"updates,omitempty"`
}

// Loop is the daemon: it reconciles on triggers (poll, webhooks, cron
// schedules, manual syncs), one pass at a time.
type Loop struct {
	Engine  *Engine
	Fetcher Fetcher
	Metrics LoopMetrics
	Notify  LoopNotifier
	Log     *logrus.Logger
	// Poll overrides tend { poll_interval } when set.
	Poll time.Duration
	// Autoscaler, when set, scales the servers with a scaling block on
	// providers that do not scale by themselves, every ScaleInterval
	// (DefaultScaleInterval when zero).
	Autoscaler    *Autoscaler
	ScaleInterval time.Duration
	// UsageInterval, when positive, is how often the loop samples what
	// every running replica uses and records it per server, for tend
	// capacity's average and peak; samples older than UsageKeep (when
	// positive) are deleted.
	UsageInterval time.Duration
	UsageKeep     time.Duration
	// Updater, when set, runs the update jobs (tend run's automatic
	// updates of the lock file) on their schedules.
	Updater *autoupdate.Runner

	trigger chan string
	jobs    chan job
	once    sync.Once

	mu         sync.Mutex
	st         LoopStatus
	lastGood   *Source
	stalledRev string
	lastErrMsg string
	failures   int
	cron       *cron.Cron
	cronSpec   string
	windowWake time.Time          // when a change window lets a waiting change go
	waiting    map[string]string  // server → fields hash of the change a "waiting" event was sent for
	applying   string             // revision being applied, for superseding
	cancelPass context.CancelFunc // cancels the apply of an older revision
	draining   bool
	// scaleQueued holds the servers with a scale job in the queue.
	scaleQueued map[string]bool
	// updates is the last update run's finding per server; updateSent
	// what the last update event of each job said.
	updates    map[string]UpdateStatus
	updateSent map[string]string
	// loads keeps the servers of the files of the last revision loaded, so
	// that loading the next one decodes only the files that changed.
	loads *spec.Cache
	// events fans notifications and pass results out to subscribers.
	events events
}

func (l *Loop) init() {
	l.once.Do(func() {
		l.trigger = make(chan string, 1)
		l.jobs = make(chan job, 64)
		if l.Log == nil {
			l.Log = logrus.New()
		}
		l.st.Source = l.Fetcher.Describe()
	})
}

// Trigger asks for a pass. It never blocks; triggers during a pass cause
// exactly one more pass. A trigger during an apply also checks the source:
// when it moved to a newer revision, the apply of the older one is
// cancelled (its servers are not held) and the newer one goes next.
func (l *Loop) Trigger(reason string) {
	l.init()
	select {
	case l.trigger <- reason:
	default:
	}
	l.mu.Lock()
	applying := l.applying
	l.mu.Unlock()
	if applying != "" {
		go l.checkSupersede(applying)
	}
}

func (l *Loop) checkSupersede(applying string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	peek, ok := l.Fetcher.(interface {
		Peek(ctx context.Context) (string, error)
	})
	if !ok {
		return
	}
	rev, err := peek.Peek(ctx)
	if err != nil || rev == "" || rev == applying {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.applying == applying && l.cancelPass != nil {
		l.Log.WithFields(logrus.Fields{"revision": applying, "newer": rev}).Info("a newer revision supersedes the apply in progress")
		l.cancelPass()
	}
}

// Status returns the loop's state.
func (l *Loop) Status() LoopStatus {
	l.init()
	l.mu.Lock()
	defer l.mu.Unlock()
	st := l.st
	st.Drift = append([]string(nil), l.st.Drift...)
	st.Updates = l.updateStatusLocked()
	return st
}

// Ready reports whether a desired state was loaded at least once.
func (l *Loop) Ready() bool { return l.Status().Ready }

// LastGood returns the newest source that loaded, or nil.
func (l *Loop) LastGood() *Source {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lastGood
}

// Run reconciles until ctx ends. On ctx's end an apply in progress stops
// starting servers, finishes the ones in flight and records them; then Run
// returns.
func (l *Loop) Run(ctx context.Context) error {
	l.init()
	defer func() {
		if l.cron != nil {
			<-l.cron.Stop().Done()
		}
	}()
	l.seedBackupMetrics()
	if l.Autoscaler != nil {
		done := make(chan struct{})
		defer func() { <-done }()
		go func() {
			defer close(done)
			l.autoscale(ctx)
		}()
	}
	if l.UsageInterval > 0 {
		done := make(chan struct{})
		defer func() { <-done }()
		go func() {
			defer close(done)
			l.sampleUsage(ctx)
		}()
	}
	l.Trigger("start")
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case reason := <-l.trigger:
			l.runPass(ctx, reason)
		case j := <-l.jobs:
			l.runQueued(ctx, j)
		case <-timer.C:
			l.runPass(ctx, "poll")
		}
		if ctx.Err() != nil {
			return nil
		}
		next := l.nextDelay()
		l.mu.Lock()
		l.st.NextPass = time.Now().Add(next)
		l.mu.Unlock()
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(next)
	}
}

// nextDelay is the poll interval, or a capped exponential backoff after
// failures (so a broken remote is not hammered, and logs stay quiet).
func (l *Loop) nextDelay() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	poll := l.Poll
	if poll == 0 && l.lastGood != nil {
		poll = l.lastGood.Config.Tend.PollInterval
	}
	if poll == 0 {
		poll = spec.DefaultPollInterval
	}
	if l.failures == 0 {
		// A change waiting for a window goes when the window lets it,
		// not a poll interval later.
		if !l.windowWake.IsZero() {
			if d := time.Until(l.windowWake) + time.Second; d < poll {
				return max(d, time.Second)
			}
		}
		return poll
	}
	d := 5 * time.Second << min(l.failures-1, 6)
	return min(d, max(poll, 5*time.Minute))
}

// logOnce logs a failure only when it differs from the previous one, so a
// stuck loop does not flood the logs.
func (l *Loop) logOnce(msg string, fields logrus.Fields) {
	l.mu.Lock()
	same := msg == l.lastErrMsg
	l.lastErrMsg = msg
	l.mu.Unlock()
	if !same {
		l.Log.WithFields(fields).Error(msg)
	}
}

func (l *Loop) clearErr(what string) {
	l.mu.Lock()
	had := l.lastErrMsg != ""
	l.lastErrMsg = ""
	l.failures = 0
	l.mu.Unlock()
	if had {
		l.Log.WithField("source", l.Fetcher.Describe()).Info(what)
	}
}

func (l *Loop) runPass(ctx context.Context, reason string) {
	start := time.Now()
	result := l.pass(ctx, reason)
	d := time.Since(start)
	l.mu.Lock()
	l.st.Passes++
	l.st.LastPass = start
	l.st.LastResult = result
	if result == PassApplied || result == PassNoChange {
		l.st.LastSuccess = time.Now()
	}
	l.mu.Unlock()
	if l.Metrics != nil {
		l.Metrics.ObservePass(result, d)
		if result == PassApplied || result == PassNoChange {
			l.Metrics.SetLastSuccess(time.Now())
		}
	}
	l.Log.WithFields(logrus.Fields{"trigger": reason, "result": result, "duration_ms": d.Milliseconds()}).Debug("pass done")
	l.publish(LoopEvent{Kind: "pass", Message: result})
}

// pass is one reconcile: fetch, load, plan, filter, apply, report.
func (l *Loop) pass(ctx context.Context, reason string) string {
	t0 := time.Now()
	files, rev, _, err := l.Fetcher.Fetch(ctx)
	if l.Metrics != nil {
		l.Metrics.ObserveFetch(time.Since(t0), err)
	}
	src := l.LastGood()
	if err != nil {
		msg := fmt.Sprintf("cannot read the desired state from %s: %v", l.Fetcher.Describe(), err)
		l.mu.Lock()
		l.st.FetchError = msg
		l.failures++
		l.mu.Unlock()
		l.logOnce("source unavailable; keeping the last good revision", logrus.Fields{"source": l.Fetcher.Describe(), "error": err.Error()})
		if src == nil {
			return PassFetchError
		}
		// Keep the fleet as the last good revision says (heal drift).
		return l.reconcile(ctx, src, reason, PassFetchError)
	}
	l.mu.Lock()
	l.st.FetchError = ""
	l.st.Revision = rev
	stalledRev := l.stalledRev
	l.mu.Unlock()

	if src == nil || src.Base != rev {
		if rev == stalledRev {
			// The same broken revision: do not load, log or notify again.
			if src == nil {
				return PassStalled
			}
			return l.reconcile(ctx, src, reason, PassStalled)
		}
		l.mu.Lock()
		if l.loads == nil {
			l.loads = spec.NewCache()
		}
		loader := spec.NewLoader(l.Engine.LoadOptions).WithCache(l.loads)
		l.mu.Unlock()
		loaded, loader, diags := newSource(loader, l.Fetcher.Describe(), rev, files)
		if diags.HasErrors() {
			text := renderDiags(loader, diags)
			l.mu.Lock()
			l.stalledRev = rev
			l.st.Stalled = fmt.Sprintf("revision %s does not load; nothing of it is applied until the desired state changes:\n%s", rev, text)
			l.failures = 0
			l.mu.Unlock()
			l.Log.WithFields(logrus.Fields{"revision": rev, "errors": countErrors(diags)}).Error("the desired state does not load; stalled until it changes")
			l.notify("failure", "", "", rev, fmt.Sprintf("revision %s of %s does not load (%d errors); the fleet stays as it is", rev, l.Fetcher.Describe(), countErrors(diags)))
			if src == nil {
				return PassStalled
			}
			return l.reconcile(ctx, src, reason, PassStalled)
		}
		l.mu.Lock()
		l.lastGood = loaded
		l.stalledRev = ""
		l.st.Stalled = ""
		l.st.Ready = true
		l.mu.Unlock()
		l.schedule(loaded.Config)
		src = loaded
	}
	l.clearErr("the desired state is readable again")
	return l.reconcile(ctx, src, reason, "")
}

// renderDiags prints diagnostics for the stalled message, as the CLI does:
// the first errors and warnings, each with its snippet, control bytes
// escaped.
func renderDiags(loader interface{ Files() map[string]*hcl.File }, diags hcl.Diagnostics) string {
	w := diagtext.Writer{Width: 100, Hint: "`tend validate -o json` on a checkout of the revision lists them all."}
	if loader != nil {
		w.Files = loader.Files()
	}
	return w.String(diags)
}

func countErrors(diags hcl.Diagnostics) int {
	n := 0
	for _, d := range diags {
		if d.Severity == hcl.DiagError {
			n++
		}
	}
	return n
}

// schedule (re)installs the cron triggers: tend { schedule } and every
// server's drift_check.
func (l *Loop) schedule(cfg *spec.Config) {
	specs := map[string]string{}
	if cfg.Tend.Schedule != "" {
		specs[cfg.Tend.Schedule] = "schedule"
	}
	var jobs []string // "EXPR=backup:SERVER", "EXPR=drill:SERVER"
	for _, name := range cfg.ServerNames() {
		s := cfg.Servers[name]
		if s.Drift != "" {
			if _, ok := specs[s.Drift]; !ok {
				specs[s.Drift] = "drift-check:" + name
			}
		}
		if b := s.Backup; b != nil && !b.ReadOnly {
			jobs = append(jobs, b.Schedule+"="+jobBackup+":"+name)
			if b.Drill != "" {
				jobs = append(jobs, b.Drill+"="+jobDrill+":"+name)
			}
		}
	}
	keys := make([]string, 0, len(specs)+len(jobs))
	for k := range specs {
		keys = append(keys, k+"="+specs[k])
	}
	jobs = append(jobs, l.updateJobs(cfg)...)
	keys = append(keys, jobs...)
	sort.Strings(keys)
	sig := strings.Join(keys, "\n")
	l.mu.Lock()
	defer l.mu.Unlock()
	if sig == l.cronSpec {
		return
	}
	if l.cron != nil {
		l.cron.Stop()
	}
	l.cronSpec = sig
	if len(specs) == 0 && len(jobs) == 0 {
		l.cron = nil
		return
	}
	c := cron.New(cron.WithParser(cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)))
	for expr, reason := range specs {
		reason := reason
		if _, err := c.AddFunc(expr, func() { l.Trigger(reason) }); err != nil {
			l.Log.WithError(err).WithField("schedule", expr).Error("cannot schedule")
		}
	}
	for _, j := range jobs {
		i := strings.LastIndex(j, "=")
		expr, what := j[:i], j[i+1:]
		kind, server, _ := strings.Cut(what, ":")
		if _, err := c.AddFunc(expr, func() { l.enqueue(job{kind: kind, server: server}) }); err != nil {
			l.Log.WithError(err).WithField("schedule", expr).Error("cannot schedule")
		}
	}
	c.Start()
	l.cron = c
}

// reconcile plans src and applies what the loop's rules allow.
func (l *Loop) reconcile(ctx context.Context, src *Source, reason, resultIfOK string) string {
	e := l.Engine
	release, err := e.Lock("run")
	if err != nil {
		l.logOnce("cannot take the apply lock", logrus.Fields{"error": err.Error()})
		l.mu.Lock()
		l.failures++
		l.mu.Unlock()
		return PassFailed
	}
	defer release()
	p, err := e.Plan(ctx, src)
	if err != nil {
		l.logOnce("planning failed", logrus.Fields{"revision": src.Revision, "error": err.Error()})
		l.mu.Lock()
		l.failures++
		l.mu.Unlock()
		return PassFailed
	}
	for _, w := range p.Warnings {
		l.Log.WithFields(logrus.Fields{"revision": src.Revision, "warning": w}).Warn("the plan deploys a release with a warning")
	}
	l.filter(src, p)
	l.reportServers(p)
	var wake time.Time
	for _, c := range p.Changes {
		if c.Action == ActionWaiting && !c.WaitUntil.IsZero() && (wake.IsZero() || c.WaitUntil.Before(wake)) {
			wake = c.WaitUntil
		}
	}
	l.mu.Lock()
	l.windowWake = wake
	l.mu.Unlock()
	l.noteWaiting(src, p)
	// The revision counts as applied only when nothing of it is held back:
	// a held (rolled back), kept (not pruned) or waiting change means the
	// fleet does not run it.
	stuck, held := false, false
	for _, c := range p.Changes {
		switch c.Action {
		case ActionHeld, ActionBlocked, ActionKept:
			stuck, held = true, true
		case ActionWaiting:
			stuck = true
		}
	}
	markApplied := func() {
		if stuck {
			return
		}
		l.mu.Lock()
		l.st.Applied = src.Revision
		l.mu.Unlock()
	}
	if !p.HasChanges() {
		markApplied()
		switch {
		case resultIfOK != "":
			return resultIfOK
		case held:
			return PassHeld
		case stuck:
			return PassWaiting
		}
		return PassNoChange
	}
	// The apply is cancelled when a newer revision arrives (superseded),
	// and drains on shutdown: servers in flight finish, no new one starts.
	applyCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	l.mu.Lock()
	l.applying, l.cancelPass = src.Base, cancel
	l.mu.Unlock()
	stopDrain := context.AfterFunc(ctx, func() {
		l.mu.Lock()
		l.draining = true
		l.mu.Unlock()
	})
	defer stopDrain()
	e.Draining = func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.draining
	}
	defer func() { e.Draining = nil }()
	l.Log.WithFields(logrus.Fields{"revision": src.Revision, "trigger": reason}).Info("applying")
	res, err := e.Apply(applyCtx, src, p)
	l.mu.Lock()
	l.applying, l.cancelPass = "", nil
	l.mu.Unlock()
	if err != nil {
		l.logOnce("apply failed", logrus.Fields{"revision": src.Revision, "error": err.Error()})
		l.mu.Lock()
		l.failures++
		l.mu.Unlock()
		return PassFailed
	}
	l.reportResults(src, p, res)
	if res.Failed() {
		return PassFailed
	}
	markApplied()
	if resultIfOK != "" {
		return resultIfOK
	}
	return PassApplied
}

// filter drops what the loop must not do on its own: healing drift when
// self_heal is off, and pruning beyond the configured share.
func (l *Loop) filter(src *Source, p *Plan) {
	cfg := src.Config
	var drift []string
	for _, c := range p.Changes {
		switch {
		case c.Action == ActionHeal:
			if !selfHeal(cfg, c.Server) {
				for _, r := range c.Reasons {
					drift = append(drift, c.Server+": "+r)
				}
				c.Action = ActionNoop
			}
		case c.Action == ActionWaiting && len(c.HealInWindow) > 0:
			if !selfHeal(cfg, c.Server) {
				drift = append(drift, fmt.Sprintf("%s: %s failed, not healed (self_heal is off)", c.Server, replicaNames(c.HealInWindow)))
				c.HealInWindow = nil
			}
		}
	}
	// The prune guard is the plan's (guardPrune): every command holds it.
	refused := p.PruneRefused
	sort.Strings(drift)
	l.mu.Lock()
	newDrift := strings.Join(drift, "\n") != strings.Join(l.st.Drift, "\n")
	newRefusal := refused != "" && refused != l.st.PruneRefused
	l.st.Drift = drift
	l.st.PruneRefused = refused
	l.mu.Unlock()
	if newRefusal {
		// Once per refusal, not on every pass.
		l.Log.WithFields(logrus.Fields{"revision": src.Revision, "reason": refused}).Warn("prune refused")
		l.notify("held", "", "", src.Revision, refused)
	}
	if newDrift && len(drift) > 0 {
		l.Log.WithField("drift", drift).Warn("drift detected; self_heal is off, so it is reported, not healed")
		for _, d := range drift {
			server, msg, _ := strings.Cut(d, ": ")
			l.notify("drift", server, "", src.Revision, msg)
		}
	}
}

func (l *Loop) reportServers(p *Plan) {
	if l.Metrics == nil {
		return
	}
	for _, c := range p.Changes {
		if c.Action == ActionDelete {
			continue
		}
		drifted := c.Action == ActionHeal
		for _, r := range c.Reasons {
			if strings.Contains(r, "drifted") || strings.Contains(r, "exited") || strings.Contains(r, "crash") {
				drifted = true
			}
		}
		up := c.FromReplicas > 0
		l.Metrics.SetServer(c.Server, up, up && !drifted, drifted, c.Action == ActionHeld)
		if wm, ok := l.Metrics.(WaitMetrics); ok {
			var waits []string
			if c.Action == ActionWaiting {
				waits = c.WaitsFor
			}
			wm.SetWaiting(c.Server, waits)
		}
	}
}

func (l *Loop) reportResults(src *Source, p *Plan, res *ApplyResult) {
	byServer := make(map[string]*ServerChange, len(p.Changes))
	for _, c := range p.Changes {
		byServer[c.Server] = c
	}
	l.reportHeld(byServer, res)
	for _, r := range res.Servers {
		version := ""
		if c := byServer[r.Server]; c != nil {
			version = c.ToVersion
		}
		if l.Metrics != nil {
			l.Metrics.ObserveApply(r.Server, r.Duration)
		}
		switch r.Outcome {
		case ResultVerified:
			l.notify("apply", r.Server, version, src.Revision, r.Message)
		case ResultFailed:
			l.notify("failure", r.Server, version, src.Revision, r.Message)
		case ResultRolledBack:
			if l.Metrics != nil {
				l.Metrics.IncRollback(r.Server)
			}
			l.notify("rollback", r.Server, version, src.Revision, r.Message)
			l.notify("held", r.Server, version, src.Revision, "held until the desired state changes or `tend retry "+r.Server+"`")
		case ResultDeleted:
			if l.Metrics != nil {
				l.Metrics.ForgetServer(r.Server)
			}
			l.notify("apply", r.Server, "", src.Revision, "deleted")
		}
	}
}

// reportHeld sets tend_server_held of every server the apply changed from
// the holds the apply left: reportServers reported the plan made before it.
func (l *Loop) reportHeld(changes map[string]*ServerChange, res *ApplyResult) {
	hm, ok := l.Metrics.(HeldMetrics)
	if !ok || len(res.Servers) == 0 {
		return
	}
	holds, err := l.Engine.Store.Holds()
	if err != nil {
		l.logOnce("cannot read the holds", logrus.Fields{"error": err.Error()})
		return
	}
	for _, r := range res.Servers {
		c := changes[r.Server]
		if c == nil || r.Outcome == ResultDeleted {
			continue
		}
		_, held := holds[r.Server][c.FieldsHash]
		hm.SetHeld(r.Server, held)
	}
}

// selfHeal reports whether tend run heals the server on its own: its
// self_heal, else tend { self_heal }.
func selfHeal(cfg *spec.Config, server string) bool {
	if s := cfg.Servers[server]; s != nil && s.SelfHeal != nil {
		return *s.SelfHeal
	}
	return cfg.Tend.SelfHeal
}

// noteWaiting sends a "waiting" event when a change starts waiting (for a
// window, an approval or a promotion): once per change and what it waits
// for, not on every pass.
func (l *Loop) noteWaiting(src *Source, p *Plan) {
	l.mu.Lock()
	if l.waiting == nil {
		l.waiting = map[string]string{}
	}
	var send []*ServerChange
	now := map[string]bool{}
	for _, c := range p.Changes {
		if c.Action != ActionWaiting {
			continue
		}
		now[c.Server] = true
		// Once per change and what it waits for: a change that was
		// promoted and now waits for an approval says so.
		key := c.FieldsHash + "/" + strings.Join(c.WaitsFor, ",")
		if l.waiting[c.Server] != key {
			l.waiting[c.Server] = key
			send = append(send, c)
		}
	}
	for s := range l.waiting {
		if !now[s] {
			delete(l.waiting, s)
		}
	}
	l.mu.Unlock()
	for _, c := range send {
		msg := string(c.Waits)
		if len(c.Reasons) > 0 {
			msg += ", " + c.Reasons[0]
		}
		l.notify("waiting", c.Server, c.ToVersion, src.Revision, msg)
	}
}

func (l *Loop) notify(kind, server, version, revision, message string) {
	l.publish(LoopEvent{Kind: kind, Server: server, Version: version, Revision: revision, Message: message})
	if l.Notify != nil {
		l.Notify.Send(kind, server, version, revision, message)
	}
}

// ErrStalled is returned by helpers that need a loaded desired state.
var ErrStalled = errors.New("the desired state does not load")
