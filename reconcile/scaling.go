package reconcile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/tendhq/tend/providers"
	"github.com/tendhq/tend/reconcile/autoscale"
	"github.com/tendhq/tend/reconcile/state"
	"github.com/tendhq/tend/spec"
)

// TriggerAutoscale is the trigger of the revisions the autoscaler records.
const TriggerAutoscale = "autoscale"

// DefaultScaleInterval is how often tend run samples the replicas of the
// servers it scales.
const DefaultScaleInterval = 15 * time.Second

// slowSample is how long sampling one server may take before the
// autoscaler's pool adds a worker.
const slowSample = time.Millisecond

// DefaultReadyAfter is how long a new replica runs before its samples count
// (its start-up burns CPU that says nothing about its load).
const DefaultReadyAfter = 30 * time.Second

// autoscaled reports whether tend's own autoscaler scales s: it has a
// scaling block, and its provider does not scale by itself (the kubernetes
// provider hands the block to a HorizontalPodAutoscaler).
func (e *Engine) autoscaled(cfg *spec.Config, s *spec.Server) bool {
	if s == nil || s.Scaling == nil {
		return false
	}
	p, err := e.Registry.Get(cfg, s.Provider, e.ProvEnv)
	if err != nil {
		return false
	}
	if n, ok := p.(providers.SelfScaler); ok && n.ScalesItself() {
		return false
	}
	return true
}

// validTarget reports whether a recorded count still stands for s: the
// server still scales on the same provider within the same bounds. A change
// of min, max or provider resets it to the declared replicas.
func validTarget(s *spec.Server, t state.ScaleTarget) bool {
	return s != nil && s.Scaling != nil && t.Provider == s.Provider && t.Min == s.Scaling.Min && t.Max == s.Scaling.Max
}

// scaledSource returns src with the autoscaler's counts in place of the
// declared replicas, and the counts it used. A count whose desired state
// failed verification (a scale-up that kept failing its checks) is not
// used; the server stays at the count of its last verified revision.
func (e *Engine) scaledSource(src *Source) (*Source, map[string]int, error) {
	if src == nil || src.Config == nil {
		return src, nil, nil
	}
	targets, err := e.Store.ScaleTargets()
	if err != nil {
		return nil, nil, err
	}
	if len(targets) == 0 {
		return src, nil, nil
	}
	var holds map[string]map[string]state.Hold
	cfg := *src.Config
	cfg.Servers = maps.Clone(src.Config.Servers)
	counts := map[string]int{}
	for name, t := range targets {
		s := cfg.Servers[name]
		if !validTarget(s, t) || !e.autoscaled(&cfg, s) {
			continue
		}
		n := min(max(t.Replicas, s.Scaling.Min), s.Scaling.Max)
		cp := *s
		cp.Replicas = n
		if holds == nil {
			if holds, err = e.Store.Holds(); err != nil {
				return nil, nil, err
			}
		}
		if _, held := holds[name][spec.FieldsHash(cp.Fields())]; held {
			last, err := e.Store.LastVerified(name)
			if err != nil {
				continue
			}
			r := recordedReplicas(last)
			if r < s.Scaling.Min || r > s.Scaling.Max {
				continue
			}
			cp.Replicas = r
		}
		cfg.Servers[name] = &cp
		counts[name] = cp.Replicas
	}
	if len(counts) == 0 {
		return src, nil, nil
	}
	out := *src
	out.Config = &cfg
	return &out, counts, nil
}

// recordedReplicas is the replica count a revision recorded, or -1.
func recordedReplicas(r *state.Revision) int {
	var fields []spec.Field
	if json.Unmarshal(r.Spec, &fields) != nil {
		return -1
	}
	for _, f := range fields {
		if f.Path == "replicas" {
			if n, err := strconv.Atoi(f.Value); err == nil {
				return n
			}
		}
	}
	return -1
}

// ScaleStatus is what the autoscaler last saw of one server.
type ScaleStatus struct {
	Server   string             `json:"server"`
	Min      int                `json:"min"`
	Max      int                `json:"max"`
	Replicas int                `json:"replicas"` // the count tend keeps
	Running  int                `json:"running"`  // replicas that are running
	Decision autoscale.Decision `json:"decision"`
	Samples  []autoscale.Sample `json:"samples"`
}

// Autoscaler is tend's own autoscaler, for the providers that do not scale
// by themselves: Evaluate samples the replicas and decides, changing
// nothing; Scale records a decision and applies it through the engine's
// normal path (new replicas are started and verified before they count;
// extra ones are stopped gracefully, highest index first).
type Autoscaler struct {
	Engine *Engine
	// ReadyAfter is how long a replica must run before its samples count;
	// zero means DefaultReadyAfter.
	ReadyAfter time.Duration
	// Parallel is how many servers are sampled at once; zero means 32.
	Parallel int

	// rec keeps each server's recent asks for the windows (its zero value
	// is ready).
	rec autoscale.Recommender
}

// Evaluate samples every server the autoscaler scales on this host and
// returns its decisions; it changes no replica. Recorded counts that no
// longer stand (min, max or provider changed; the server is gone) are
// forgotten here.
func (a *Autoscaler) Evaluate(ctx context.Context, src *Source) ([]ScaleStatus, error) {
	e := a.Engine
	if err := a.forgetStale(src.Config); err != nil {
		return nil, err
	}
	scaled, _, err := e.scaledSource(src)
	if err != nil {
		return nil, err
	}
	cfg := scaled.Config
	var names []string
	for _, name := range cfg.ServerNames() {
		s := cfg.Servers[name]
		if e.Host.Matches(s.Selector) && e.autoscaled(cfg, s) {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return nil, nil
	}
	observed, err := e.Observe(ctx, cfg)
	if err != nil {
		return nil, err
	}
	// Each provider's list, sorted by server and replica (providers
	// usually return it so), is cut into one run a server: an Instance is
	// large, and a pass over thousands of servers must not copy them.
	byServer := make(map[string][]providers.Instance, len(names))
	for key, list := range observed {
		less := func(i, j int) bool {
			if list[i].Server != list[j].Server {
				return list[i].Server < list[j].Server
			}
			return list[i].Replica < list[j].Replica
		}
		if !sort.SliceIsSorted(list, less) {
			sort.SliceStable(list, less)
		}
		for i := 0; i < len(list); {
			j := i
			for j < len(list) && list[j].Server == list[i].Server {
				j++
			}
			if s := cfg.Servers[list[i].Server]; s != nil && s.Provider == key {
				run := list[i:j:j]
				lo := sort.Search(len(run), func(k int) bool { return run[k].Replica >= 0 })
				hi := sort.Search(len(run), func(k int) bool { return run[k].Replica >= s.Replicas })
				if lo < hi {
					byServer[list[i].Server] = run[lo:hi:hi]
				}
			}
			i = j
		}
	}
	ready := a.ReadyAfter
	if ready == 0 {
		ready = DefaultReadyAfter
	}
	par := a.Parallel
	if par <= 0 {
		par = 32
	}
	out := make([]ScaleStatus, len(names))
	// One sampler per provider.
	samplers := map[string]*autoscale.Sampler{}
	for _, name := range names {
		key := cfg.Servers[name].Provider
		if _, ok := samplers[key]; ok {
			continue
		}
		sm := &autoscale.Sampler{ReadyAfter: ready, Now: e.now}
		if p, err := e.Registry.Get(cfg, key, e.ProvEnv); err == nil {
			sm.Stats, _ = p.(providers.Statser)
		}
		samplers[key] = sm
	}
	// The pool starts with one worker and grows, up to par, while servers
	// are slow to sample (a provider that measures CPU over an interval,
	// an HTTP metric): a fast source (in-memory, cached) is sampled by
	// one goroutine, which costs the least CPU.
	var next atomic.Int64
	var workers atomic.Int64
	var wg sync.WaitGroup
	var work func()
	spawn := func() {
		if workers.Add(1) > int64(min(par, len(names))) {
			workers.Add(-1)
			return
		}
		wg.Add(1)
		go work()
	}
	work = func() {
		defer wg.Done()
		for {
			i := int(next.Add(1) - 1)
			if i >= len(names) || ctx.Err() != nil {
				return
			}
			t0 := time.Now()
			name := names[i]
			s := cfg.Servers[name]
			insts := byServer[name]
			running := 0
			for j := range insts {
				if insts[j].State == providers.StateRunning {
					running++
				}
			}
			samples := samplers[s.Provider].Sample(ctx, s, insts)
			d := a.rec.Decide(autoscale.Input{
				Server: name, Min: s.Scaling.Min, Max: s.Scaling.Max, Current: s.Replicas,
				Targets: autoscale.Targets(s.Scaling), Samples: samples,
				UpWindow: s.Scaling.ScaleUpWindow, DownWindow: s.Scaling.ScaleDownWindow, Now: e.now(),
			})
			out[i] = ScaleStatus{Server: name, Min: s.Scaling.Min, Max: s.Scaling.Max, Replicas: s.Replicas, Running: running, Decision: d, Samples: samples}
			if time.Since(t0) > slowSample {
				spawn()
			}
		}
	}
	spawn()
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// forgetStale drops the recorded counts that no longer stand.
func (a *Autoscaler) forgetStale(cfg *spec.Config) error {
	e := a.Engine
	targets, err := e.Store.ScaleTargets()
	if err != nil {
		return err
	}
	for name, t := range targets {
		s := cfg.Servers[name]
		if validTarget(s, t) && e.autoscaled(cfg, s) {
			continue
		}
		why := "the server left the desired state"
		switch {
		case s == nil:
		case s.Scaling == nil:
			why = "its scaling block was removed"
		case t.Provider != s.Provider:
			why = "it moved to provider " + s.Provider
		case t.Min != s.Scaling.Min || t.Max != s.Scaling.Max:
			why = fmt.Sprintf("its scaling bounds changed (min %d, max %d → min %d, max %d)", t.Min, t.Max, s.Scaling.Min, s.Scaling.Max)
		default:
			why = "its provider scales it by itself"
		}
		if err := e.Store.DeleteScaleTarget(name); err != nil {
			return err
		}
		a.rec.Forget(name)
		e.log().WithFields(logrus.Fields{"server": name, "replicas": t.Replicas, "reason": why}).Info("autoscaled count reset to the declared replicas")
	}
	return nil
}

// ScaleResult is how a decision ended.
type ScaleResult struct {
	Server     string `json:"server"`
	From       int    `json:"from"`
	To         int    `json:"to"`
	Outcome    string `json:"outcome"` // a state.Scale* outcome, or "" when nothing was done
	Message    string `json:"message"`
	DecisionID int64  `json:"decision_id,omitempty"`
	RevisionID int64  `json:"revision_id,omitempty"`
}

// errScaleStale says a decision was made for a count that is no longer the
// server's.
var errScaleStale = errors.New("the decision is stale")

// Scale records a decision and applies it. The caller holds the apply
// lock. A decision for a count that changed since it was made is dropped;
// a count whose desired state failed verification before is not applied
// again (recorded as held, once).
func (a *Autoscaler) Scale(ctx context.Context, src *Source, st ScaleStatus) (ScaleResult, error) {
	e := a.Engine
	d := st.Decision
	res := ScaleResult{Server: d.Server, From: d.Current, To: d.Desired}
	scaled, _, err := e.scaledSource(src)
	if err != nil {
		return res, err
	}
	s := scaled.Config.Servers[d.Server]
	if s == nil || !e.autoscaled(scaled.Config, s) {
		return res, fmt.Errorf("%s: %w: the server is no longer scaled by tend", d.Server, errScaleStale)
	}
	if s.Replicas != d.Current || !d.Changes() {
		return res, fmt.Errorf("%s: %w: it runs %d replicas now, the decision was made at %d", d.Server, errScaleStale, s.Replicas, d.Current)
	}
	inputs, _ := json.Marshal(struct {
		Decision autoscale.Decision `json:"decision"`
		Samples  []autoscale.Sample `json:"samples"`
	}{d, st.Samples})
	cp := *s
	cp.Replicas = d.Desired
	holds, err := e.Store.Holds()
	if err != nil {
		return res, err
	}
	if h, held := holds[s.Name][spec.FieldsHash(cp.Fields())]; held {
		res.Outcome = state.ScaleHeld
		res.Message = fmt.Sprintf("held at %d replicas: %d replicas failed verification at %s (%s); `tend retry %s` lets the autoscaler try again",
			d.Current, d.Desired, h.At.UTC().Format(time.RFC3339), h.Reason, s.Name)
		last, _ := e.Store.ScaleDecisions(s.Name, 1)
		if len(last) == 1 && last[0].Outcome == state.ScaleHeld && last[0].ToReplicas == d.Desired && last[0].FromReplicas == d.Current {
			return res, nil // said once already
		}
		res.DecisionID, err = e.Store.RecordScale(state.ScaleDecision{Server: s.Name, FromReplicas: d.Current, ToReplicas: d.Desired,
			Outcome: state.ScaleHeld, Reason: d.Reason, Message: res.Message, Inputs: inputs, DecidedAt: d.At})
		return res, err
	}
	id, err := e.Store.BeginScale(
		state.ScaleDecision{Server: s.Name, FromReplicas: d.Current, ToReplicas: d.Desired, Reason: d.Reason, Inputs: inputs, DecidedAt: d.At},
		state.ScaleTarget{Server: s.Name, Provider: s.Provider, Replicas: d.Desired, Min: s.Scaling.Min, Max: s.Scaling.Max})
	if err != nil {
		return res, err
	}
	res.DecisionID = id
	finish := func(outcome, msg string, rev int64, back int) (ScaleResult, error) {
		res.Outcome, res.Message, res.RevisionID = outcome, msg, rev
		return res, e.Store.FinishScale(id, outcome, msg, rev, back, e.now())
	}
	// Plan this server alone (its dependencies are planned, not changed).
	// A scale is not a change of the desired state, so change windows do
	// not keep it back.
	p, err := e.plan(ctx, src, []string{s.Name}, true, true)
	if err != nil {
		return finish(state.ScaleFailed, "planning the scale failed: "+err.Error(), 0, d.Current)
	}
	var c *ServerChange
	for _, ch := range p.Changes {
		if ch.Server == s.Name {
			c = ch
			continue
		}
		ch.Action = ActionNoop // its dependencies are the pass's business
	}
	switch {
	case c == nil:
		return finish(state.ScaleFailed, "the server is not in the plan", 0, d.Current)
	case c.Action == ActionNoop:
		return finish(state.ScaleApplied, fmt.Sprintf("already at %d replicas", d.Desired), 0, -1)
	case c.Action != ActionScale:
		// The server has other changes too (a new revision not applied
		// yet, a failed replica): the count goes with them, in the next
		// pass, which applies and verifies the whole change.
		return finish(state.ScaleInterrupted, fmt.Sprintf("the server has other changes (%s); the next pass applies %d replicas with them", c.Action, d.Desired), 0, -1)
	}
	c.Trigger = TriggerAutoscale
	c.Reasons = append([]string{"autoscale: " + d.Reason}, c.Reasons...)
	ar, err := e.Apply(ctx, src, p)
	if err != nil {
		return finish(state.ScaleFailed, err.Error(), 0, d.Current)
	}
	for _, r := range ar.Servers {
		if r.Server != s.Name {
			continue
		}
		switch r.Outcome {
		case ResultVerified:
			return finish(state.ScaleApplied, r.Message, r.RevisionID, -1)
		case ResultSkipped:
			return finish(state.ScaleInterrupted, r.Message, r.RevisionID, -1)
		default:
			return finish(state.ScaleFailed, r.Message, r.RevisionID, d.Current)
		}
	}
	return finish(state.ScaleFailed, "the apply did not reach the server", 0, d.Current)
}
