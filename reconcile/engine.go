package reconcile

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/sirupsen/logrus"
	"github.com/tendhq/tend/providers"
	"github.com/tendhq/tend/reconcile/state"
	"github.com/tendhq/tend/reconcile/versions"
	"github.com/tendhq/tend/spec"
	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"
)

// Source is a snapshot of a state repository: its files, the revision that
// names them, and the configuration decoded from exactly those files.
type Source struct {
	Dir      string
	Revision string
	// Base is the revision of the files alone (a commit, a directory hash),
	// without the inputs.
	Base   string
	Files  map[string][]byte
	Config *spec.Config
}

// MaxSourceBytes bounds a snapshot; a state repository is text.
const MaxSourceBytes = 32 << 20

// ReadSource reads every regular file of dir (hidden folders skipped) into
// memory and names the snapshot "dir-" plus a hash of the files. Entries
// that are not regular files (named pipes, symbolic links, devices) are
// not read; LoadSource warns about those named *.hcl.
func ReadSource(dir string) (map[string][]byte, string, error) {
	files, rev, _, err := readSource(dir)
	return files, rev, err
}

func readSource(dir string) (map[string][]byte, string, []spec.Skipped, error) {
	files := map[string][]byte{}
	var skipped []spec.Skipped
	total := 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel != "." && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			if strings.HasSuffix(d.Name(), ".hcl") {
				skipped = append(skipped, spec.Skipped{Path: filepath.ToSlash(rel), Mode: d.Type()})
			}
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		total += len(b)
		if total > MaxSourceBytes {
			return fmt.Errorf("the state repository %s holds more than %d MiB of files; keep binaries out of it", dir, MaxSourceBytes>>20)
		}
		files[filepath.ToSlash(rel)] = b
		return nil
	})
	if err != nil {
		return nil, "", nil, err
	}
	return files, SourceRevision(files), skipped, nil
}

// SourceRevision names a set of files by their content.
func SourceRevision(files map[string][]byte) string {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	h := sha256.New()
	for _, n := range names {
		fmt.Fprintf(h, "%s\x00%d\x00", n, len(files[n]))
		h.Write(files[n])
	}
	return "dir-" + hex.EncodeToString(h.Sum(nil))[:12]
}

// LoadSource snapshots dir and decodes the snapshot. The returned loader
// holds the parsed files for printing diagnostics.
//
// The snapshot also records the inputs that are not files: the environment
// and the values of variables given by --var or TEND_VAR_, so that a
// rollback re-creates exactly what ran. Sensitive variables are not
// recorded (nothing secret is ever stored); a rollback uses their current
// values.
func LoadSource(dir string, opts spec.Options) (*Source, *spec.Loader, hcl.Diagnostics) {
	files, rev, skipped, err := readSource(dir)
	if err != nil {
		return nil, nil, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Cannot read the state repository", Detail: err.Error()}}
	}
	var warnings hcl.Diagnostics
	for _, s := range skipped {
		warnings = append(warnings, s.Warning(dir))
	}
	src, l, diags := NewSource(dir, rev, files, opts)
	return src, l, append(warnings, diags...)
}

// NewSource decodes files fetched from somewhere (a directory, a git
// commit) and records the load's inputs in the snapshot. The snapshot is
// named base (a directory hash, a commit), with "+" and a hash of the inputs
// appended when variables or an environment were given, so that two loads of
// one commit with different inputs are different snapshots.
func NewSource(display, base string, files map[string][]byte, opts spec.Options) (*Source, *spec.Loader, hcl.Diagnostics) {
	return newSource(spec.NewLoader(opts), display, base, files)
}

// newSource is NewSource with the loader given: the daemon's keeps a
// spec.Cache from one revision to the next.
func newSource(l *spec.Loader, display, base string, files map[string][]byte) (*Source, *spec.Loader, hcl.Diagnostics) {
	cfg, diags := l.LoadFiles(display, files)
	if cfg != nil && len(cfg.Files) == 0 && !diags.HasErrors() {
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "No configuration files",
			Detail: fmt.Sprintf("%s holds no .hcl files: a state repository describes its servers in *.hcl files.", display)})
	}
	rev := base
	if cfg != nil && !diags.HasErrors() {
		in := recordInputs(cfg)
		files[InputsFile] = in
		if string(in) != "{}" {
			sum := sha256.Sum256(in)
			rev = base + "+" + hex.EncodeToString(sum[:])[:6]
		}
	}
	return &Source{Dir: display, Revision: rev, Base: base, Files: files, Config: cfg}, l, diags
}

// LoadSnapshot decodes a stored snapshot, with the inputs it recorded.
func LoadSnapshot(dir, rev string, files map[string][]byte, opts spec.Options) (*Source, *spec.Loader, hcl.Diagnostics) {
	l := spec.NewLoader(snapshotOptions(opts, files))
	cfg, diags := l.LoadFiles(dir, files)
	return &Source{Dir: dir, Revision: rev, Base: rev, Files: files, Config: cfg}, l, diags
}

// InputsFile is the snapshot entry that records the inputs of a load that
// are not files. Its name starts with a dot, so no file of a repository can
// take its place (hidden files are not read).
const InputsFile = ".tend-inputs.json"

type loadInputs struct {
	Env  string            `json:"env,omitempty"`
	Vars map[string]string `json:"vars,omitempty"`
	// Sensitive names the sensitive variables that were set by --var or
	// TEND_VAR_: their values are never stored, so a restore takes their
	// current values.
	Sensitive []string `json:"sensitive,omitempty"`
}

func recordInputs(cfg *spec.Config) []byte {
	in := loadInputs{Env: cfg.Env, Vars: map[string]string{}}
	for _, name := range sortedNames(cfg.Variables) {
		v := cfg.Variables[name]
		if v.Source != "flag" && v.Source != "environment" {
			continue
		}
		if v.Sensitive {
			in.Sensitive = append(in.Sensitive, name)
			continue
		}
		val, _ := v.Value.Unmark()
		if !val.IsWhollyKnown() {
			continue
		}
		if val.Type() == cty.String {
			in.Vars[name] = val.AsString()
			continue
		}
		if b, err := ctyjson.Marshal(val, val.Type()); err == nil {
			in.Vars[name] = string(b)
		}
	}
	b, _ := json.Marshal(in)
	return b
}

func sortedNames[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// snapshotOptions returns the load options that re-create a snapshot: the
// recorded environment and variable values, and nothing from today's
// --var or TEND_VAR_ but the values of the sensitive variables it names.
func snapshotOptions(opts spec.Options, files map[string][]byte) spec.Options {
	var in loadInputs
	if raw, ok := files[InputsFile]; ok {
		_ = json.Unmarshal(raw, &in)
	}
	keep := map[string]bool{}
	for _, n := range in.Sensitive {
		keep[n] = true
	}
	vars := map[string]string{}
	for k, v := range opts.Vars {
		if keep[k] {
			vars[k] = v
		}
	}
	for k, v := range in.Vars {
		vars[k] = v
	}
	environ := opts.Environ
	if environ == nil {
		environ = os.LookupEnv
	}
	opts.Environ = func(k string) (string, bool) {
		if name, ok := strings.CutPrefix(k, spec.VarEnvPrefix); ok && !keep[name] {
			return "", false
		}
		return environ(k)
	}
	opts.Env, opts.Vars = in.Env, vars
	return opts
}

// Engine plans and applies. Its fields are the wiring; it keeps no state of
// its own between calls.
type Engine struct {
	Store     *state.Store
	Registry  *providers.Registry
	ProvEnv   providers.Env
	ManagedBy string
	Host      Host
	// Version is this tend's version, recorded in backup manifests.
	Version string
	// LoadOptions are used to re-load an old revision's snapshot for a
	// rollback (the secrets come from the reconciler's side, as always).
	LoadOptions spec.Options
	Parallelism int
	// Targets limits plans to these servers and their dependencies
	// (tend plan/apply -target); empty means the whole desired state.
	Targets []string
	// IgnoreWindows plans changes even while the config's window blocks
	// keep them back (tend plan/apply -ignore-windows).
	IgnoreWindows bool
	// AllowPrune lets plans delete every server, or more than
	// max_prune_percent of them (--allow-prune).
	AllowPrune bool
	Log        *logrus.Logger
	// Progress receives lines for a person watching an apply.
	Progress io.Writer
	Now      func() time.Time
	// LockTTL is how long the apply lock lasts without a refresh.
	LockTTL time.Duration
	// Owner names who holds the lock ("tend apply").
	Owner string
	// Draining, when it returns true, stops an apply from starting more
	// servers (the daemon is shutting down); servers in flight finish.
	Draining func() bool

	progressMu sync.Mutex
	started    map[string]time.Time // server → when its change began, for progress lines
}

// track starts (or, with done, ends) the elapsed-time clock of a server's
// progress lines.
func (e *Engine) track(server string, done bool) {
	e.progressMu.Lock()
	defer e.progressMu.Unlock()
	if e.started == nil {
		e.started = map[string]time.Time{}
	}
	if done {
		delete(e.started, server)
	} else {
		e.started[server] = e.now()
	}
}

func (e *Engine) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

// discardLog is the logger of an Engine that was given none.
var discardLog = func() *logrus.Logger {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return l
}()

func (e *Engine) log() *logrus.Logger {
	if e.Log == nil {
		return discardLog
	}
	return e.Log
}

// say writes a progress line for a person.
func (e *Engine) say(server, format string, args ...any) {
	if e.Progress == nil {
		return
	}
	e.progressMu.Lock()
	defer e.progressMu.Unlock()
	if server != "" {
		elapsed := ""
		if t, ok := e.started[server]; ok {
			elapsed = fmt.Sprintf(" [%s]", roundDur(e.now().Sub(t)))
		}
		fmt.Fprintf(e.Progress, "%s%s: %s\n", server, elapsed, fmt.Sprintf(format, args...))
	} else {
		fmt.Fprintf(e.Progress, "%s\n", fmt.Sprintf(format, args...))
	}
}

// providerKeys lists the providers to observe: every declared one, the
// implicit default, and those that hold recorded servers.
func (e *Engine) providerKeys(cfg *spec.Config, targets []string) []string {
	set := map[string]bool{}
	if len(targets) > 0 {
		// A targeted plan prunes nothing, so it asks only the providers
		// of the servers it covers.
		if ts, err := TargetSet(cfg, targets); err == nil {
			for name := range ts {
				set[cfg.Servers[name].Provider] = true
			}
			return slices.Sorted(maps.Keys(set))
		}
	}
	for k := range cfg.Providers {
		set[k] = true
	}
	for _, s := range cfg.Servers {
		if s.Provider != "" {
			set[s.Provider] = true
		}
	}
	if len(cfg.Providers) == 0 {
		set[spec.DefaultProcessProvider] = true
	}
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Observe asks every provider once, in bulk (with Targets, only the
// providers of the servers they cover).
func (e *Engine) Observe(ctx context.Context, cfg *spec.Config) (map[string][]providers.Instance, error) {
	return e.observe(ctx, cfg, e.Targets)
}

func (e *Engine) observe(ctx context.Context, cfg *spec.Config, targets []string) (map[string][]providers.Instance, error) {
	out := map[string][]providers.Instance{}
	var errs []string
	for _, key := range e.providerKeys(cfg, targets) {
		p, err := e.Registry.Get(cfg, key, e.ProvEnv)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		resp := p.Observe(ctx, providers.ObserveRequest{ManagedBy: e.ManagedBy})
		if resp.Err != nil {
			errs = append(errs, fmt.Sprintf("observing %s: %v", key, resp.Err))
			continue
		}
		for i := range resp.Instances {
			resp.Instances[i].Provider = key
		}
		out[key] = resp.Instances
	}
	if len(errs) > 0 {
		return out, errors.New(strings.Join(errs, "; "))
	}
	return out, nil
}

// records loads the newest revision of every server and the holds.
func (e *Engine) records() (map[string]*Record, map[string]map[string]state.Hold, error) {
	latest, err := e.Store.LatestAll()
	if err != nil {
		return nil, nil, err
	}
	recs := make(map[string]*Record, len(latest))
	for name, r := range latest {
		recs[name] = decodeRecord(r)
	}
	holds, err := e.Store.Holds()
	if err != nil {
		return nil, nil, err
	}
	return recs, holds, nil
}

// Plan observes the fleet and plans the source, and checks what the plan
// would deploy (vetReleases).
func (e *Engine) Plan(ctx context.Context, src *Source) (*Plan, error) {
	p, err := e.plan(ctx, src, e.Targets, e.IgnoreWindows, false)
	if err != nil {
		return nil, err
	}
	if err := e.vetReleases(ctx, src.Config, p); err != nil {
		return nil, err
	}
	return p, nil
}

// plan is Plan with its targets and window rule given, so that a caller
// beside the engine's own (the autoscaler) never changes the fields that
// other goroutines read.
func (e *Engine) plan(ctx context.Context, src *Source, targets []string, ignoreWindows, ungated bool) (*Plan, error) {
	var targeted map[string]bool
	if len(targets) > 0 {
		var err error
		if targeted, err = TargetSet(src.Config, targets); err != nil {
			return nil, err
		}
	}
	src, _, err := e.scaledSource(src)
	if err != nil {
		return nil, err
	}
	observed, err := e.observe(ctx, src.Config, targets)
	if err != nil {
		return nil, err
	}
	latest, holds, err := e.records()
	if err != nil {
		return nil, err
	}
	in := PlanInput{
		Config: src.Config, SourceRevision: src.Revision, ManagedBy: e.ManagedBy, Host: e.Host,
		Observed: observed, Latest: latest, Holds: holds, Now: e.now(), Targets: targets, IgnoreWindows: ignoreWindows,
		AllowPrune: e.AllowPrune, Ungated: ungated,
	}
	if !ungated {
		if in.Decisions, err = e.Store.OpenDecisions(); err != nil {
			return nil, err
		}
		in.Promotions = e.promotions(ctx, src.Config, latest, targeted)
	}
	return BuildPlan(in)
}

// vetReleases checks what the plan would deploy (versions.Vet): the
// locked digests of the servers it starts anew, and the advisories. Its
// errors refuse the plan; its warnings go with it.
func (e *Engine) vetReleases(ctx context.Context, cfg *spec.Config, p *Plan) error {
	var names []string
	for _, c := range p.Changes {
		if deploys(c) {
			names = append(names, c.Server)
		}
	}
	if len(names) == 0 {
		return nil
	}
	diags := versions.Vet(ctx, versions.VetInput{Config: cfg, Servers: names})
	if diags.HasErrors() {
		return &ReleaseError{Diags: diags}
	}
	p.Diagnostics = diags
	for _, d := range diags {
		p.Warnings = append(p.Warnings, fmt.Sprintf("%s: %s: %s", d.Subject, d.Summary, d.Detail))
	}
	return nil
}

// deploys reports whether a change starts replicas of a new desired state:
// not a scale or a heal of what runs, nor replicas started again on the
// revision last recorded (its image is pinned to the digest it was
// verified with; its build is checked by the provider).
func deploys(c *ServerChange) bool {
	if c.recorded {
		return false
	}
	switch c.Action {
	case ActionCreate, ActionUpdate, ActionReplace:
		return c.Rollout && len(c.Start) > 0
	}
	return false
}

// ReleaseError refuses a plan that would deploy a release that is not the
// locked one, or (block_vulnerable) a vulnerable one. Diags says which,
// each at its server's version attribute.
type ReleaseError struct{ Diags hcl.Diagnostics }

func (e *ReleaseError) Error() string {
	var parts []string
	for _, d := range e.Diags {
		if d.Severity == hcl.DiagError {
			parts = append(parts, fmt.Sprintf("%s: %s", d.Summary, d.Detail))
		}
	}
	return strings.Join(parts, "; ")
}

// StalePlanError says why a saved plan cannot be applied any more.
type StalePlanError struct{ Reasons []string }

func (e *StalePlanError) Error() string {
	return "the saved plan is stale; the fleet or the desired state changed since it was made:\n  - " +
		strings.Join(e.Reasons, "\n  - ") + "\nMake a new plan."
}

// CheckSaved compares a saved plan with a fresh plan of the same source and
// refuses it when the world moved.
func CheckSaved(saved, fresh *Plan) error {
	var reasons []string
	if saved.SourceRevision != fresh.SourceRevision {
		reasons = append(reasons, fmt.Sprintf("the source is now %s, the plan was made for %s", fresh.SourceRevision, saved.SourceRevision))
	}
	if saved.Fingerprint != fresh.Fingerprint {
		reasons = append(reasons, "what is running or recorded changed since the plan was made")
	}
	byServer := map[string]*ServerChange{}
	for _, c := range fresh.Changes {
		byServer[c.Server] = c
	}
	for _, c := range saved.Changes {
		f := byServer[c.Server]
		switch {
		case f == nil:
			reasons = append(reasons, fmt.Sprintf("%s: planned to %s, now nothing to do", c.Server, c.Action))
		case f.Action != c.Action || f.SpecHash != c.SpecHash || !slices.Equal(f.Start, c.Start) || len(f.Stop) != len(c.Stop):
			r := fmt.Sprintf("%s: planned to %s, now it would %s", c.Server, c.Action, f.Action)
			if len(f.Reasons) > 0 {
				r += " (" + strings.Join(f.Reasons, "; ") + ")"
			}
			reasons = append(reasons, r)
		}
		delete(byServer, c.Server)
	}
	for _, f := range fresh.Changes {
		if _, ok := byServer[f.Server]; ok && f.Action.Changes() {
			reasons = append(reasons, fmt.Sprintf("%s: not in the plan, now it would %s", f.Server, f.Action))
		}
	}
	if len(reasons) > 0 {
		sort.Strings(reasons)
		return &StalePlanError{Reasons: reasons}
	}
	return nil
}

// Lock takes the apply lock and keeps it fresh until release is called.
func (e *Engine) Lock(operation string) (release func(), err error) {
	ttl := e.LockTTL
	if ttl == 0 {
		ttl = 2 * time.Minute
	}
	host, _ := os.Hostname()
	owner := e.Owner
	if owner == "" {
		owner = "tend " + operation
	}
	lease, err := e.Store.Lock(state.LockInfo{Owner: owner, Operation: operation, Host: host, PID: os.Getpid()}, ttl)
	if err != nil {
		return nil, err
	}
	if lease.TookOverFrom != nil {
		n, _ := e.Store.MarkInterrupted(e.now())
		_, _ = e.Store.MarkScalesInterrupted(e.now())
		e.log().WithFields(logrus.Fields{"previous_owner": lease.TookOverFrom.Owner, "previous_pid": lease.TookOverFrom.PID, "interrupted": n}).
			Warn("took over a stale lock")
		e.say("", "Took over the lock of %s (pid %d on %s), which is gone; %d unfinished %s marked interrupted.",
			lease.TookOverFrom.Owner, lease.TookOverFrom.PID, lease.TookOverFrom.Host, n, plural(n, "revision", "revisions"))
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(ttl / 3)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				if err := lease.Refresh(ttl); err != nil {
					e.log().WithError(err).Error("lost the apply lock")
					return
				}
			}
		}
	}()
	return func() {
		close(stop)
		<-done
		_ = lease.Release()
	}, nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
