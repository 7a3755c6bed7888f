package autoscale

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/tendhq/tend/providers"
	"github.com/tendhq/tend/spec"
)

// Defaults of a Sampler.
const (
	DefaultSampleParallel = 16
	DefaultSampleTimeout  = 5 * time.Second
	// MaxMetricsBody is the most of a metrics response the Sampler reads.
	MaxMetricsBody = 4 << 20
	// inlineBudget is how long reading one replica's stats may take for
	// the next replica to be read inline too.
	inlineBudget = time.Millisecond
)

// Sampler reads one sample per replica.
type Sampler struct {
	Stats providers.Statser // nil: no cpu/memory samples
	// Route, when set, says how to reach a replica's port (the kubernetes
	// provider's CheckRouter); nil: http://inst.Host:port.
	Route  func(inst providers.Instance, port int) (url string, rt http.RoundTripper, ok bool, err error)
	Client *http.Client // nil: a client with Timeout
	// Parallel is how many replicas are sampled at once; 0 means 16.
	Parallel int
	// Timeout bounds the sampling of one replica (its stats and every
	// metric read); 0 means 5s.
	Timeout time.Duration
	// ReadyAfter: a replica younger than this (by Instance.StartedAt) is
	// not ready; 0 means 0.
	ReadyAfter time.Duration
	Now        func() time.Time // nil: time.Now
}

// Sample reads the metrics of srv's scaling block from each instance and
// returns one Sample per instance, sorted by replica. A replica that is
// not ready is not read. What cannot be read is missing from Values, and
// Sample.Err says why (naming the metric and the URL path, never a header
// or a host's credentials). Instances are read at most Parallel at a
// time (stats alone one after the other while each read is quick); Sample
// returns when all are done or ctx ends.
func (s *Sampler) Sample(ctx context.Context, srv *spec.Server, insts []providers.Instance) []Sample {
	out := make([]Sample, len(insts))
	if len(insts) == 0 {
		return out
	}
	r := s.reader(srv)
	n := s.Parallel
	if n <= 0 {
		n = DefaultSampleParallel
	}
	n = min(n, len(insts))

	// Stats alone are often a read of a few files (process, systemd) or
	// of memory: a goroutine and a timer per replica would cost more than
	// the read. Replicas are read one after the other while each read is
	// quick; a slow one (a Docker API call) sends the rest to the pool.
	// The replicas read inline share one deadline, and the pool takes
	// over once a tenth of Timeout has gone by, so that each read has at
	// least nine tenths of it. Metric reads are HTTP round trips: the
	// pool from the start.
	done := 0
	if len(r.metrics) == 0 {
		ictx, cancel := context.WithTimeout(ctx, r.timeout)
		began := time.Now()
		last := began
		for done < len(insts) {
			out[done] = r.one(ictx, insts[done])
			done++
			now := time.Now()
			if now.Sub(last) > inlineBudget || now.Sub(began) > r.timeout/10 {
				break
			}
			last = now
		}
		cancel()
	}
	if rest := insts[done:]; len(rest) > 0 {
		var next atomic.Int64
		var wg sync.WaitGroup
		for range min(n, len(rest)) {
			wg.Go(func() {
				for {
					i := int(next.Add(1) - 1)
					if i >= len(rest) {
						return
					}
					rctx, cancel := context.WithTimeout(ctx, r.timeout)
					out[done+i] = r.one(rctx, rest[i])
					cancel()
				}
			})
		}
		wg.Wait()
	}
	if !slices.IsSortedFunc(out, byReplica) {
		slices.SortStableFunc(out, byReplica)
	}
	return out
}

func byReplica(a, b Sample) int { return a.Replica - b.Replica }

// reader is what one Sample call reads, and how.
type reader struct {
	s        *Sampler
	cpu, mem bool
	metrics  []*spec.Metric
	client   *http.Client
	timeout  time.Duration
	now      time.Time
}

func (s *Sampler) reader(srv *spec.Server) *reader {
	r := &reader{s: s, timeout: s.Timeout}
	if r.timeout <= 0 {
		r.timeout = DefaultSampleTimeout
	}
	if s.Now != nil {
		r.now = s.Now()
	} else {
		r.now = time.Now()
	}
	if srv == nil || srv.Scaling == nil {
		return r
	}
	sc := srv.Scaling
	r.cpu, r.mem = sc.CPUPercent > 0, sc.MemoryPercent > 0
	for _, m := range sc.Metrics {
		if m != nil {
			r.metrics = append(r.metrics, m)
		}
	}
	if len(r.metrics) > 0 {
		r.client = s.Client
		if r.client == nil {
			r.client = &http.Client{Timeout: r.timeout}
		}
	}
	return r
}

// reads reports whether sampling a replica reads anything.
func (r *reader) reads() bool { return r.cpu || r.mem || len(r.metrics) > 0 }

// ready says whether a replica counts, and if not, why.
func (r *reader) ready(inst providers.Instance) (bool, string) {
	if inst.State != providers.StateRunning {
		return false, "not ready (" + string(inst.State) + ")"
	}
	if age := r.now.Sub(inst.StartedAt); r.s.ReadyAfter > 0 && !inst.StartedAt.IsZero() && age < r.s.ReadyAfter {
		return false, fmt.Sprintf("not ready (started %s ago, counts after %s)", age.Round(time.Second), r.s.ReadyAfter)
	}
	return true, ""
}

// one samples one replica; ctx bounds it.
func (r *reader) one(ctx context.Context, inst providers.Instance) Sample {
	smp := Sample{Replica: inst.Replica}
	ok, why := r.ready(inst)
	if !ok {
		smp.Err = why
		return smp
	}
	smp.Ready = true
	if !r.reads() {
		return smp
	}
	var errs []string
	put := func(name string, v float64) {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			errs = append(errs, name+": not a number ("+strconv.FormatFloat(v, 'g', -1, 64)+")")
			return
		}
		if smp.Values == nil {
			smp.Values = make(map[string]float64, 2+len(r.metrics))
		}
		smp.Values[name] = v
	}

	if r.cpu || r.mem {
		switch {
		case r.s.Stats == nil:
			errs = append(errs, "cpu and memory: the provider does not report resource use")
		default:
			st, err := r.s.Stats.Stats(ctx, inst)
			if err != nil {
				errs = append(errs, "cpu and memory: "+r.explain(ctx, err))
				break
			}
			if r.cpu {
				put(CPU, st.CPUPercent)
			}
			if r.mem {
				put(Memory, st.MemoryPercent)
			}
		}
	}

	// Metrics that share an endpoint share one read.
	var pages map[string]page
	for _, m := range r.metrics {
		path := m.Path
		if path == "" {
			path = "/metrics"
		} else if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		key := m.Port + " " + path
		pg, done := pages[key]
		if !done {
			pg = r.fetch(ctx, inst, m.Port, path)
			if pages == nil {
				pages = map[string]page{}
			}
			pages[key] = pg
		}
		if pg.err != nil {
			errs = append(errs, m.Name+": "+pg.err.Error())
			continue
		}
		v, err := familyValue(pg.fams, m.Name, path)
		if err != nil {
			errs = append(errs, m.Name+": "+err.Error())
			continue
		}
		put(m.Name, v)
	}
	smp.Err = strings.Join(errs, "; ")
	return smp
}

// page is one metrics endpoint of a replica, read and parsed.
type page struct {
	fams map[string]*dto.MetricFamily
	err  error
}

// fetch reads and parses GET path on a replica's named port.
func (r *reader) fetch(ctx context.Context, inst providers.Instance, portName, path string) page {
	fail := func(format string, args ...any) page {
		return page{err: fmt.Errorf("GET "+path+": "+format, args...)}
	}
	port := inst.Ports[portName]
	if port <= 0 {
		return page{err: fmt.Errorf("the replica has no port %q", portName)}
	}
	target := "http://" + net.JoinHostPort(inst.Host, strconv.Itoa(port)) + path
	client := r.client
	if r.s.Route != nil {
		base, rt, ok, err := r.s.Route(inst, port)
		if err != nil {
			return fail("no route to port %s: %s", portName, r.explain(ctx, err))
		}
		if ok {
			target = strings.TrimSuffix(base, "/") + path
			if rt != nil {
				c := *client
				c.Transport = rt
				client = &c
			}
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return fail("%s", r.explain(ctx, err))
	}
	req.Header.Set("Accept", "text/plain;version=0.0.4;q=1,*/*;q=0.1")
	resp, err := client.Do(req)
	if err != nil {
		return fail("%s", r.explain(ctx, err))
	}
	defer func() {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // keep the connection
		_ = resp.Body.Close()
	}()
	if resp.StatusCode != http.StatusOK {
		return fail("%s", resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxMetricsBody+1))
	if err != nil {
		return fail("reading the response: %s", r.explain(ctx, err))
	}
	if len(body) > MaxMetricsBody {
		return fail("the response is over %d MiB", MaxMetricsBody>>20)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		return fail("%s", err)
	}
	return page{fams: fams}
}

// explain words an error of a read without the URL it may carry (an
// *url.Error names the whole URL, which a route may make long or
// private): the path is said by the caller.
func (r *reader) explain(ctx context.Context, err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		if ue.Timeout() {
			return "timed out after " + r.timeout.String()
		}
		err = ue.Err
	}
	if errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil {
		return "timed out after " + r.timeout.String()
	}
	return err.Error()
}

// familyValue is the sum over every series of the family name: a gauge,
// a counter or an untyped value. A histogram or a summary is refused: its
// samples are not one level of load.
func familyValue(fams map[string]*dto.MetricFamily, name, path string) (float64, error) {
	f, ok := fams[name]
	if !ok {
		for _, suffix := range []string{"_count", "_sum", "_bucket"} {
			base, cut := strings.CutSuffix(name, suffix)
			if g := fams[base]; cut && g != nil && kind(g) != "" {
				return 0, fmt.Errorf("metric %s is part of the %s %s; scale on a gauge", name, kind(g), base)
			}
		}
		return 0, fmt.Errorf("GET %s has no metric %s", path, name)
	}
	if k := kind(f); k != "" {
		return 0, fmt.Errorf("metric %s is a %s; scale on a gauge", name, k)
	}
	var sum float64
	for _, m := range f.GetMetric() {
		switch f.GetType() {
		case dto.MetricType_GAUGE:
			sum += m.GetGauge().GetValue()
		case dto.MetricType_COUNTER:
			sum += m.GetCounter().GetValue()
		default:
			sum += m.GetUntyped().GetValue()
		}
	}
	return sum, nil
}

// kind names a family that is not one value per series.
func kind(f *dto.MetricFamily) string {
	switch f.GetType() {
	case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
		return "histogram"
	case dto.MetricType_SUMMARY:
		return "summary"
	}
	return ""
}
