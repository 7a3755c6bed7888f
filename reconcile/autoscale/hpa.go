package autoscale

import (
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tendhq/tend/spec"
)

// The names in Decision.Limits.
const (
	// LimitUpWindow: the scale-up window held the count down to the
	// smallest recent ask.
	LimitUpWindow = "scale_up_window"
	// LimitDownWindow: the scale-down window held the count up to the
	// largest recent ask.
	LimitDownWindow = "scale_down_window"
	// LimitRate: at most double up, at most halve down, in one decision.
	LimitRate = "rate"
	// LimitMin and LimitMax: the scaling block's bounds.
	LimitMin = "min"
	LimitMax = "max"
	// LimitNoSamples: a metric had no samples while the others asked to
	// scale down; the count stays (as the HPA does).
	LimitNoSamples = "no_samples"
)

// maxProposal caps what one metric may ask for, so that a wild value
// cannot overflow an int; spec caps max far below it.
const maxProposal = 1 << 20

// epsilon absorbs the rounding of float arithmetic at the edges: a ratio
// this close to the tolerance is within it, and an ask this close above a
// whole number is that number.
const epsilon = 1e-9

// Targets returns the metrics a scaling block scales on: cpu_percent, then
// memory_percent, then the metric blocks in their order.
func Targets(sc *spec.Scaling) []Target {
	if sc == nil {
		return nil
	}
	out := make([]Target, 0, 2+len(sc.Metrics))
	if sc.CPUPercent > 0 {
		out = append(out, Target{Name: CPU, Value: float64(sc.CPUPercent)})
	}
	if sc.MemoryPercent > 0 {
		out = append(out, Target{Name: Memory, Value: float64(sc.MemoryPercent)})
	}
	for _, m := range sc.Metrics {
		if m != nil {
			out = append(out, Target{Name: m.Name, Value: m.Target})
		}
	}
	return out
}

// Recommender turns samples into decisions. It remembers, per server, the
// counts the metrics asked for recently (for the stabilization windows),
// and nothing else. It is safe for concurrent use; the zero value is ready
// to use.
type Recommender struct {
	mu      sync.Mutex
	history map[string][]ask
}

// ask is one unstabilized recommendation and when it was made.
type ask struct {
	replicas int
	at       time.Time
}

// NewRecommender returns a Recommender with no history.
func NewRecommender() *Recommender {
	return &Recommender{history: map[string][]ask{}}
}

// Forget drops what r remembers of a server (it was removed, or lost its
// scaling block).
func (r *Recommender) Forget(server string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.history, server)
}

// Decide computes the replica count for one server from one pass of
// samples, and remembers the metrics' ask for the windows of later passes.
// It does no I/O, and no input makes it panic: a target that is not a
// positive number, and a value that is NaN or infinite, count as missing.
//
// Min below 0 counts as 0 and Max below Min as Min (spec refuses both).
// Samples of replicas outside [0, Current) are ignored, and so is a
// second sample of the same replica.
func (r *Recommender) Decide(in Input) Decision {
	in = normalize(in)
	d := Decision{Server: in.Server, At: in.Now, Current: in.Current, Proposal: in.Current}
	samples := usable(in.Samples, in.Current)

	d.Metrics = make([]MetricResult, 0, len(in.Targets))
	lead := -1
	var blind []string
	for _, t := range in.Targets {
		m, ok := measure(t, samples, in.Current, in.Tolerance)
		d.Metrics = append(d.Metrics, m)
		if !ok {
			blind = append(blind, blindly(m))
			continue
		}
		if lead < 0 || m.Proposal > d.Metrics[lead].Proposal {
			lead = len(d.Metrics) - 1
		}
	}

	var why reason
	switch {
	case lead < 0:
		// Nothing to go by: keep the count, within the bounds.
		if len(in.Targets) == 0 {
			why.head = "no metric to scale on"
		} else {
			why.head = strings.Join(blind, ", ")
		}
		d.Desired = d.Current
	case len(blind) > 0 && d.Metrics[lead].Proposal < in.Current:
		// The HPA does not scale down while a metric cannot be read: the
		// blind one might need the replicas.
		d.Proposal = d.Metrics[lead].Proposal
		d.Desired = d.Current
		d.Limits = append(d.Limits, LimitNoSamples)
		why.head = describe(d.Metrics[lead], in.Current)
		why.blind = blind
	default:
		m := d.Metrics[lead]
		d.Proposal = m.Proposal
		why.head = describe(m, in.Current)
		why.note = m.Note
		d.Desired, why.window = r.stabilize(in, m.Proposal)
		switch {
		case d.Desired < d.Proposal:
			d.Limits = append(d.Limits, LimitUpWindow)
		case d.Desired > d.Proposal:
			d.Limits = append(d.Limits, LimitDownWindow)
		}
	}
	why.wants, why.stabilized = d.Proposal, d.Desired

	d.Desired, why.limit, why.phrase = bound(in, d.Desired)
	if why.limit != "" {
		d.Limits = append(d.Limits, why.limit)
	}
	d.Reason = why.text(d)
	return d
}

// normalize makes an Input safe to compute with.
func normalize(in Input) Input {
	if in.Current < 0 {
		in.Current = 0
	}
	if in.Min < 0 {
		in.Min = 0
	}
	if in.Max < in.Min {
		in.Max = in.Min
	}
	if !(in.Tolerance > 0) || math.IsInf(in.Tolerance, 0) {
		in.Tolerance = DefaultTolerance
	}
	if in.UpWindow < 0 {
		in.UpWindow = 0
	}
	if in.DownWindow < 0 {
		in.DownWindow = 0
	}
	return in
}

// usable returns the samples of replicas 0 to current-1, each once.
func usable(samples []Sample, current int) []Sample {
	sorted := true
	for i, s := range samples {
		if s.Replica < 0 || s.Replica >= current || (i > 0 && s.Replica <= samples[i-1].Replica) {
			sorted = false
			break
		}
	}
	if sorted {
		return samples // the Sampler's order: nothing to drop
	}
	out := make([]Sample, 0, len(samples))
	seen := make(map[int]bool, len(samples))
	for _, s := range samples {
		if s.Replica < 0 || s.Replica >= current || seen[s.Replica] {
			continue
		}
		seen[s.Replica] = true
		out = append(out, s)
	}
	return out
}

// blindly says why a metric asks for nothing, for a reason.
func blindly(m MetricResult) string {
	if m.Note == "no samples" {
		return "no samples of " + m.Name
	}
	return m.Name + " has no positive target"
}

// resource reports whether a metric is a percentage of a replica's limit.
func resource(name string) bool { return name == CPU || name == Memory }

// measure is replica_calculator.go's calcPlainMetricReplicas for one
// metric. ok is false when the metric has no samples (or no usable
// target) and asks for nothing.
func measure(t Target, samples []Sample, current int, tolerance float64) (m MetricResult, ok bool) {
	m = MetricResult{Name: t.Name, Target: t.Value, Proposal: current}
	if !(t.Value > 0) || math.IsInf(t.Value, 0) {
		m.Note = "the target is not a positive number"
		return m, false
	}
	var sum float64
	var ready, missing, unready int
	for _, s := range samples {
		if !s.Ready {
			unready++
			continue
		}
		v, has := s.Values[t.Name]
		if !has || math.IsNaN(v) || math.IsInf(v, 0) {
			missing++
			continue
		}
		sum += v
		ready++
	}
	m.Sampled = ready
	if ready == 0 {
		m.Note = "no samples"
		return m, false
	}
	value := sum / float64(ready)
	ratio := value / t.Value
	if math.IsInf(ratio, 0) {
		// Finite values too large to compute with: a Decision must stay
		// encodable as JSON.
		m.Sampled, m.Note = 0, "no samples"
		return m, false
	}
	m.Value, m.Ratio = value, ratio

	upWithUnready := unready > 0 && ratio > 1
	if !upWithUnready && missing == 0 {
		if within(ratio, tolerance) {
			m.Note = "within tolerance"
			return m, true
		}
		m.Proposal = count(sum / t.Value) // ratio × ready
		return m, true
	}

	// Fill in the replicas without a value, against the direction the
	// ready ones point, and look again.
	counted, filled := ready, sum
	var what []string
	if missing > 0 {
		switch {
		case ratio < 1:
			// Scaling down: a missing replica may be the busy one.
			fallback := t.Value
			if resource(t.Name) {
				fallback = math.Max(100, t.Value) // the HPA's 100% of the request
			}
			filled += float64(missing) * fallback
			counted += missing
			what = append(what, "missing")
		case ratio > 1:
			// Scaling up: a missing replica may be idle.
			counted += missing
			what = append(what, "missing")
		}
	}
	if upWithUnready {
		// A replica that is starting uses nothing yet, and will take load.
		counted += unready
		what = append(what, "not-ready")
	}
	newRatio := filled / float64(counted) / t.Value
	if math.IsInf(newRatio, 0) {
		m.Note = "no samples"
		return m, false
	}
	m.Ratio = newRatio
	counting := ""
	if len(what) > 0 {
		counting = " counting " + strings.Join(what, " and ") + " replicas"
	}
	switch {
	case within(newRatio, tolerance):
		m.Note = "within tolerance" + counting
		return m, true
	case (ratio < 1 && newRatio > 1) || (ratio > 1 && newRatio < 1):
		m.Note = "no change" + counting + " (the direction turns)"
		return m, true
	}
	n := count(filled / t.Value) // newRatio × counted
	if (newRatio < 1 && n > current) || (newRatio > 1 && n < current) {
		m.Note = "no change" + counting + " (the direction turns)"
		return m, true
	}
	m.Proposal = n
	return m, true
}

// within reports whether a ratio asks for no change.
func within(ratio, tolerance float64) bool {
	return math.Abs(ratio-1) <= tolerance+epsilon
}

// count is ceil(x) as a replica count, in [0, maxProposal].
func count(x float64) int {
	switch {
	case math.IsNaN(x) || x <= 0:
		return 0
	case x >= maxProposal:
		return maxProposal
	}
	return int(math.Ceil(x - epsilon))
}

// stabilize is horizontal.go's stabilizeRecommendationWithBehaviors: the
// count moves from Current toward the ask only as far as every ask of the
// windows agrees. It records the ask, and drops asks older than both
// windows.
func (r *Recommender) stabilize(in Input, proposal int) (desired int, window time.Duration) {
	upCutoff, downCutoff := in.Now.Add(-in.UpWindow), in.Now.Add(-in.DownWindow)
	up, down := proposal, proposal

	r.mu.Lock()
	defer r.mu.Unlock()
	if r.history == nil {
		r.history = map[string][]ask{}
	}
	old := r.history[in.Server]
	kept := old[:0]
	for _, a := range old {
		inUp, inDown := a.at.After(upCutoff), a.at.After(downCutoff)
		if inUp {
			up = min(up, a.replicas)
		}
		if inDown {
			down = max(down, a.replicas)
		}
		if inUp || inDown {
			kept = append(kept, a)
		}
	}
	// An older ask equal to the newest is in every window the newest is in
	// (windows end now), so a run of equal asks is kept as its newest: a
	// steady load keeps one ask a server, whatever the window and interval.
	if n := len(kept); n > 0 && kept[n-1].replicas == proposal && !kept[n-1].at.After(in.Now) {
		kept[n-1].at = in.Now
	} else {
		kept = append(kept, ask{replicas: proposal, at: in.Now})
	}
	r.history[in.Server] = kept

	desired = min(max(in.Current, up), down)
	switch {
	case desired < proposal:
		window = in.UpWindow
	case desired > proposal:
		window = in.DownWindow
	}
	return desired, window
}

// bound applies the bounds and the rate limit to a stabilized count, the
// way horizontal.go's convertDesiredReplicasWithBehaviorRate does, with
// one policy each way: up to twice Current, down to half of it (rounded
// up). The bounds are reached at once from outside them, and from 0 the
// count may grow to 1. It returns the limit that bit, if any, and words
// for it.
func bound(in Input, n int) (out int, limit, phrase string) {
	hi, hiBy, hiPhrase := in.Max, LimitMax, "max"
	lo, loBy, loPhrase := in.Min, LimitMin, "min"
	cur := in.Current
	if n > cur {
		rate, p := 2*cur, "at most double per step"
		if cur > math.MaxInt/2 {
			rate = math.MaxInt
		}
		if rate < 1 {
			rate, p = 1, "from 0, at most 1 per step"
		}
		if rate < in.Min {
			rate, p = in.Min, "below min, at most min in one step"
		}
		if rate < hi {
			hi, hiBy, hiPhrase = rate, LimitRate, p
		}
	}
	if n < cur {
		rate, p := cur-cur/2, "at most halve per step"
		if rate > in.Max {
			rate, p = in.Max, "above max, at most max in one step"
		}
		if rate > lo {
			lo, loBy, loPhrase = rate, LimitRate, p
		}
	}
	switch {
	case n > hi:
		return hi, hiBy, hiPhrase
	case n < lo:
		return lo, loBy, loPhrase
	}
	return n, "", ""
}

// reason gathers the parts of Decision.Reason.
type reason struct {
	head       string   // what the leading metric says, or why there is none
	note       string   // why the leading metric asks for no change
	blind      []string // metrics without samples that hold a scale-down (blindly)
	wants      int      // the ask, before the windows
	stabilized int      // after the windows
	window     time.Duration
	limit      string // the bound or rate that bit last
	phrase     string
}

// text is one line for a person:
//
//	cpu 142% of 70%: 2 → 5, limited to 4 (at most double per step)
//	cpu 65% of 70%: within tolerance, stays at 2
//	memory 20% of 80%: wants 1, held at 3 by scale_down_window (5m0s)
func (w reason) text(d Decision) string {
	var b strings.Builder
	b.WriteString(w.head)
	b.WriteString(": ")
	switch {
	case len(w.blind) > 0:
		b.WriteString("wants " + strconv.Itoa(w.wants) + ", held at " + strconv.Itoa(d.Current) + " while " +
			strings.Join(w.blind, ", "))
	case w.stabilized != w.wants && w.limit == "":
		// The window is what holds the count: say so. When a bound or
		// the rate bites after it, that is what the line says instead.
		b.WriteString("wants " + strconv.Itoa(w.wants) + ", held at " + strconv.Itoa(w.stabilized) + " by ")
		if w.stabilized < w.wants {
			b.WriteString(LimitUpWindow)
		} else {
			b.WriteString(LimitDownWindow)
		}
		b.WriteString(" (" + w.window.String() + ")")
	case w.stabilized == d.Current:
		// "within tolerance, stays at 2"; "within tolerance at 10, limited
		// to 5 (max)"; "stays at 2"; "at 10, limited to 5 (max)".
		b.WriteString(w.note)
		switch {
		case w.limit != "" && w.note != "":
			b.WriteString(" at ")
		case w.limit != "":
			b.WriteString("at ")
		case w.note != "":
			b.WriteString(", stays at ")
		default:
			b.WriteString("stays at ")
		}
		b.WriteString(strconv.Itoa(d.Current))
	default:
		b.WriteString(strconv.Itoa(d.Current) + " → " + strconv.Itoa(w.stabilized))
	}
	if w.limit != "" {
		verb := ", limited to "
		if w.limit == LimitMin {
			verb = ", raised to "
		}
		b.WriteString(verb + strconv.Itoa(d.Desired) + " (" + w.phrase + ")")
	}
	return b.String()
}

// describe is a metric's part of a reason: "cpu 142% of 70%", with "(2 of
// 3 replicas)" when not every replica reported it.
func describe(m MetricResult, current int) string {
	s := m.Name + " " + value(m.Name, m.Value) + " of " + value(m.Name, m.Target)
	if m.Sampled != current {
		s += " (" + strconv.Itoa(m.Sampled) + " of " + strconv.Itoa(current) + " replicas)"
	}
	return s
}

// value formats a metric's value: cpu and memory in percent, others raw,
// with three significant digits or more.
func value(name string, v float64) string {
	prec := 2
	switch a := math.Abs(v); {
	case a >= 100:
		prec = 0
	case a >= 10:
		prec = 1
	}
	s := strconv.FormatFloat(v, 'f', prec, 64)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	if resource(name) {
		s += "%"
	}
	return s
}
