package autoscale

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tendhq/tend/providers"
	"github.com/tendhq/tend/providers/memory"
	"github.com/tendhq/tend/spec"
)

// endpoint is a replica's metrics endpoint: a real HTTP server on
// 127.0.0.1.
type endpoint struct {
	port int
	hits atomic.Int32
	srv  *httptest.Server
}

// serve answers every request with body as Prometheus text.
func serve(t *testing.T, body string) *endpoint {
	return serveFunc(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		_, _ = w.Write([]byte(body))
	})
}

func serveFunc(t *testing.T, h http.HandlerFunc) *endpoint {
	t.Helper()
	e := &endpoint{}
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.hits.Add(1)
		h(w, r)
	}))
	t.Cleanup(e.srv.Close)
	u, err := url.Parse(e.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	e.port, _ = strconv.Atoi(u.Port())
	return e
}

// replica is a running instance of web whose port http is e's.
func replica(i int, e *endpoint) providers.Instance {
	in := providers.Instance{
		Identity: providers.Identity{Server: "web", Replica: i},
		State:    providers.StateRunning, Host: "127.0.0.1", Ports: map[string]int{},
		StartedAt: t0.Add(-time.Hour),
	}
	if e != nil {
		in.Ports["http"] = e.port
	}
	return in
}

// server returns web scaling on cpu (when cpu > 0) and on the metrics
// named, all read from port http at /metrics.
func server(cpu int, metrics ...string) *spec.Server {
	sc := &spec.Scaling{Min: 1, Max: 10, CPUPercent: cpu}
	for _, name := range metrics {
		sc.Metrics = append(sc.Metrics, &spec.Metric{Name: name, Port: "http", Path: "/metrics", Target: 100})
	}
	return &spec.Server{Name: "web", Scaling: sc}
}

// fakeStats reports the stats set by replica, or err.
type fakeStats struct {
	by  map[int]providers.Stats
	err error
}

func (f fakeStats) Stats(_ context.Context, inst providers.Instance) (providers.Stats, error) {
	if f.err != nil {
		return providers.Stats{}, f.err
	}
	return f.by[inst.Replica], nil
}

func sampler() *Sampler {
	return &Sampler{Now: func() time.Time { return t0 }, Timeout: 2 * time.Second}
}

func TestSampleMetricText(t *testing.T) {
	gauge := serve(t, `# HELP qps Requests per second.
# TYPE qps gauge
qps{route="/a"} 10
qps{route="/b"} 32.5
# TYPE queue_depth gauge
queue_depth 3
other_total 1e6
`)
	counter := serve(t, `# TYPE jobs_total counter
jobs_total{queue="a"} 5
jobs_total{queue="b"} 6
untyped_thing{x="1"} 1.5
untyped_thing{x="2"} 2
`)
	histogram := serve(t, `# TYPE latency histogram
latency_bucket{le="0.1"} 1
latency_bucket{le="+Inf"} 3
latency_sum 2.5
latency_count 3
# TYPE rpc summary
rpc{quantile="0.5"} 0.2
rpc_sum 4
rpc_count 10
`)
	bad := serve(t, "# TYPE qps gauge\nqps 1\nqps{route=\"/a\"} many\n")
	nan := serve(t, "qps NaN\n")
	cases := []struct {
		name    string
		e       *endpoint
		metrics []string
		values  map[string]float64
		err     string
	}{
		{
			name: "a gauge is summed over its series", e: gauge, metrics: []string{"qps", "queue_depth"},
			values: map[string]float64{"qps": 42.5, "queue_depth": 3},
		},
		{
			name: "counters and untyped values too", e: counter, metrics: []string{"jobs_total", "untyped_thing"},
			values: map[string]float64{"jobs_total": 11, "untyped_thing": 3.5},
		},
		{
			name: "a missing family", e: gauge, metrics: []string{"qps", "inflight"},
			values: map[string]float64{"qps": 42.5},
			err:    "inflight: GET /metrics has no metric inflight",
		},
		{
			name: "bad text, with its line", e: bad, metrics: []string{"qps"},
			err: `qps: GET /metrics: text format parsing error in line 3: expected float as value, got "many"`,
		},
		{
			name: "a histogram is refused", e: histogram, metrics: []string{"latency", "latency_count", "rpc", "rpc_sum"},
			err: "latency: metric latency is a histogram; scale on a gauge; " +
				"latency_count: metric latency_count is part of the histogram latency; scale on a gauge; " +
				"rpc: metric rpc is a summary; scale on a gauge; " +
				"rpc_sum: metric rpc_sum is part of the summary rpc; scale on a gauge",
		},
		{
			name: "NaN is missing", e: nan, metrics: []string{"qps"},
			err: "qps: not a number (NaN)",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := tc.e.hits.Load()
			got := sampler().Sample(context.Background(), server(0, tc.metrics...), []providers.Instance{replica(0, tc.e)})
			want := []Sample{{Replica: 0, Ready: true, Values: tc.values, Err: tc.err}}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Sample =\n%+v\nwant\n%+v", got, want)
			}
			// Metrics of one endpoint share one read.
			if n := tc.e.hits.Load() - before; n != 1 {
				t.Errorf("%d requests, want 1", n)
			}
		})
	}
}

func TestSampleStats(t *testing.T) {
	e := serve(t, "qps 150\n")
	insts := []providers.Instance{replica(0, e), replica(1, e)}
	mem := memory.New("memory.test")
	mem.SetStats("web", 0, providers.Stats{CPUPercent: 91.5, MemoryPercent: 40})
	mem.SetStats("web", 1, providers.Stats{CPUPercent: math.NaN(), MemoryPercent: 41})

	s := sampler()
	s.Stats = mem
	srv := server(70, "qps")
	srv.Scaling.MemoryPercent = 80
	got := s.Sample(context.Background(), srv, insts)
	want := []Sample{
		{Replica: 0, Ready: true, Values: map[string]float64{CPU: 91.5, Memory: 40, "qps": 150}},
		{Replica: 1, Ready: true, Values: map[string]float64{Memory: 41, "qps": 150}, Err: "cpu: not a number (NaN)"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("with the memory provider:\n%+v\nwant\n%+v", got, want)
	}

	// Only what the scaling block names is read: no memory_percent, no
	// metric, no request.
	s.Stats = fakeStats{by: map[int]providers.Stats{0: {CPUPercent: 12, MemoryPercent: 99}}}
	before := e.hits.Load()
	got = s.Sample(context.Background(), server(70), insts[:1])
	if want := []Sample{{Replica: 0, Ready: true, Values: map[string]float64{CPU: 12}}}; !reflect.DeepEqual(got, want) {
		t.Errorf("cpu only: %+v, want %+v", got, want)
	}
	if e.hits.Load() != before {
		t.Error("a server without metric blocks was read over HTTP")
	}

	s.Stats = fakeStats{err: errors.New("docker: container gone")}
	got = s.Sample(context.Background(), server(70, "qps"), insts[:1])
	want = []Sample{{Replica: 0, Ready: true, Values: map[string]float64{"qps": 150}, Err: "cpu and memory: docker: container gone"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("stats error: %+v, want %+v", got, want)
	}

	s.Stats = nil
	got = s.Sample(context.Background(), server(70), insts[:1])
	want = []Sample{{Replica: 0, Ready: true, Err: "cpu and memory: the provider does not report resource use"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("no Statser: %+v, want %+v", got, want)
	}
}

func TestSampleNotReady(t *testing.T) {
	e := serve(t, "qps 1\n")
	starting := replica(0, e)
	starting.State = providers.StateStarting
	young := replica(1, e)
	young.StartedAt = t0.Add(-10 * time.Second)
	exited := replica(2, e)
	exited.State = providers.StateExited
	old := replica(3, e)
	old.StartedAt = t0.Add(-30 * time.Second)

	s := sampler()
	s.ReadyAfter = 30 * time.Second
	s.Stats = fakeStats{by: map[int]providers.Stats{3: {CPUPercent: 5}}}
	got := s.Sample(context.Background(), server(50, "qps"), []providers.Instance{starting, young, exited, old})
	want := []Sample{
		{Replica: 0, Err: "not ready (starting)"},
		{Replica: 1, Err: "not ready (started 10s ago, counts after 30s)"},
		{Replica: 2, Err: "not ready (exited)"},
		{Replica: 3, Ready: true, Values: map[string]float64{CPU: 5, "qps": 1}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Sample =\n%+v\nwant\n%+v", got, want)
	}
	if n := e.hits.Load(); n != 1 {
		t.Errorf("%d requests, want 1 (replicas that are not ready are not read)", n)
	}
}

func TestSampleTimeout(t *testing.T) {
	release := make(chan struct{})
	slow := serveFunc(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	defer close(release)
	s := sampler()
	s.Timeout = 200 * time.Millisecond
	start := time.Now()
	got := s.Sample(context.Background(), server(0, "qps"), []providers.Instance{replica(0, slow)})
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Sample took %v with a timeout of 200ms", took)
	}
	want := []Sample{{Replica: 0, Ready: true, Err: "qps: GET /metrics: timed out after 200ms"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Sample = %+v, want %+v", got, want)
	}
}

func TestSampleHTTPErrors(t *testing.T) {
	down := serveFunc(t, func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "secret=hunter2", http.StatusServiceUnavailable)
	})
	huge := serveFunc(t, func(w http.ResponseWriter, _ *http.Request) {
		line := []byte("# " + strings.Repeat("x", 1023) + "\n")
		for range MaxMetricsBody/len(line) + 1 {
			_, _ = w.Write(line)
		}
		_, _ = w.Write([]byte("qps 1\n"))
	})
	exact := serveFunc(t, func(w http.ResponseWriter, _ *http.Request) {
		last := "qps 7\n"
		line := []byte("# " + strings.Repeat("x", 1023) + "\n")
		for range (MaxMetricsBody - len(last)) / len(line) {
			_, _ = w.Write(line)
		}
		pad := (MaxMetricsBody - len(last)) % len(line)
		_, _ = w.Write([]byte("#" + strings.Repeat(" ", pad-2) + "\n" + last))
	})
	closed := serve(t, "")
	closed.srv.Close()
	noPort := replica(0, nil)

	cases := []struct {
		name string
		inst providers.Instance
		want Sample
	}{
		{"status", replica(0, down), Sample{Ready: true, Err: "qps: GET /metrics: 503 Service Unavailable"}},
		{"over 4 MiB", replica(0, huge), Sample{Ready: true, Err: "qps: GET /metrics: the response is over 4 MiB"}},
		{"exactly 4 MiB", replica(0, exact), Sample{Ready: true, Values: map[string]float64{"qps": 7}}},
		{"no such port", noPort, Sample{Ready: true, Err: `qps: the replica has no port "http"`}},
		{"connection refused", replica(0, closed), Sample{Ready: true,
			Err: fmt.Sprintf("qps: GET /metrics: dial tcp 127.0.0.1:%d: connect: connection refused", closed.port)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := sampler().Sample(context.Background(), server(0, "qps"), []providers.Instance{tc.inst})
			if !reflect.DeepEqual(got, []Sample{tc.want}) {
				t.Errorf("Sample = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestSampleRoute(t *testing.T) {
	var auth atomic.Value
	e := serveFunc(t, func(w http.ResponseWriter, r *http.Request) {
		auth.Store(r.Header.Get("Authorization") + " " + r.URL.Path)
		_, _ = w.Write([]byte("qps 9\n"))
	})
	inst := replica(0, nil)
	inst.Host = "192.0.2.1" // TEST-NET-1: only the route reaches it
	inst.Ports["http"] = 8080
	s := sampler()
	s.Route = func(in providers.Instance, port int) (string, http.RoundTripper, bool, error) {
		if in.Replica != 0 || port != 8080 {
			return "", nil, false, fmt.Errorf("route asked for replica %d port %d", in.Replica, port)
		}
		return e.srv.URL + "/proxy/web-0:8080/", headerRT{"Authorization", "Bearer t0ken"}, true, nil
	}
	got := s.Sample(context.Background(), server(0, "qps"), []providers.Instance{inst})
	if want := []Sample{{Replica: 0, Ready: true, Values: map[string]float64{"qps": 9}}}; !reflect.DeepEqual(got, want) {
		t.Errorf("Sample = %+v, want %+v", got, want)
	}
	if a, _ := auth.Load().(string); a != "Bearer t0ken /proxy/web-0:8080/metrics" {
		t.Errorf("the request went %q, want through the route with its round tripper", a)
	}

	// A route that fails says so, and never shows its round tripper's
	// headers.
	s.Route = func(providers.Instance, int) (string, http.RoundTripper, bool, error) {
		return "", nil, false, errors.New("no pod for web-0")
	}
	got = s.Sample(context.Background(), server(0, "qps"), []providers.Instance{inst})
	if want := []Sample{{Replica: 0, Ready: true, Err: "qps: GET /metrics: no route to port http: no pod for web-0"}}; !reflect.DeepEqual(got, want) {
		t.Errorf("Sample = %+v, want %+v", got, want)
	}

	// ok false: straight to Host:port.
	s.Route = func(providers.Instance, int) (string, http.RoundTripper, bool, error) { return "", nil, false, nil }
	got = s.Sample(context.Background(), server(0, "qps"), []providers.Instance{replica(0, e)})
	if want := []Sample{{Replica: 0, Ready: true, Values: map[string]float64{"qps": 9}}}; !reflect.DeepEqual(got, want) {
		t.Errorf("Sample = %+v, want %+v", got, want)
	}
}

type headerRT struct{ key, value string }

func (h headerRT) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set(h.key, h.value)
	return http.DefaultTransport.RoundTrip(r)
}

func TestSampleOrderAndParallel(t *testing.T) {
	var mu sync.Mutex
	inflight, most := 0, 0
	eps := make([]*endpoint, 6)
	for i := range eps {
		body := fmt.Sprintf("qps %d\n", 10*i)
		eps[i] = serveFunc(t, func(w http.ResponseWriter, _ *http.Request) {
			mu.Lock()
			inflight++
			most = max(most, inflight)
			mu.Unlock()
			// Wait for a second request in flight, briefly.
			for deadline := time.Now().Add(300 * time.Millisecond); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
				mu.Lock()
				n := inflight
				mu.Unlock()
				if n >= 2 {
					break
				}
			}
			mu.Lock()
			inflight--
			mu.Unlock()
			_, _ = w.Write([]byte(body))
		})
	}
	insts := []providers.Instance{replica(5, eps[5]), replica(2, eps[2]), replica(0, eps[0]), replica(4, eps[4]), replica(1, eps[1]), replica(3, eps[3])}
	s := sampler()
	s.Parallel = 2
	got := s.Sample(context.Background(), server(0, "qps"), insts)
	for i, smp := range got {
		want := Sample{Replica: i, Ready: true, Values: map[string]float64{"qps": float64(10 * i)}}
		if !reflect.DeepEqual(smp, want) {
			t.Errorf("sample %d = %+v, want %+v", i, smp, want)
		}
	}
	if len(got) != 6 {
		t.Errorf("%d samples, want 6", len(got))
	}
	if most != 2 {
		t.Errorf("at most %d replicas were read at once, want 2", most)
	}
}

func TestSampleNothing(t *testing.T) {
	if got := sampler().Sample(context.Background(), server(50), nil); len(got) != 0 {
		t.Errorf("no instances: %+v", got)
	}
	// No scaling block: readiness only.
	got := sampler().Sample(context.Background(), &spec.Server{Name: "web"}, []providers.Instance{replica(0, nil)})
	if want := []Sample{{Replica: 0, Ready: true}}; !reflect.DeepEqual(got, want) {
		t.Errorf("no scaling block: %+v, want %+v", got, want)
	}
	got = sampler().Sample(context.Background(), nil, []providers.Instance{replica(1, nil)})
	if want := []Sample{{Replica: 1, Ready: true}}; !reflect.DeepEqual(got, want) {
		t.Errorf("nil server: %+v, want %+v", got, want)
	}
}

// slowStats waits, in each call, until `meet` calls are in flight (or a
// while has passed), and hangs until its context ends for a replica in
// hang.
type slowStats struct {
	mu             sync.Mutex
	inflight, most int
	meet           int
	hang           map[int]bool
}

func (f *slowStats) Stats(ctx context.Context, inst providers.Instance) (providers.Stats, error) {
	if f.hang[inst.Replica] {
		<-ctx.Done()
		return providers.Stats{}, ctx.Err()
	}
	f.mu.Lock()
	f.inflight++
	f.most = max(f.most, f.inflight)
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.inflight--
		f.mu.Unlock()
	}()
	for deadline := time.Now().Add(100 * time.Millisecond); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		f.mu.Lock()
		n := f.inflight
		f.mu.Unlock()
		if n >= f.meet {
			break
		}
	}
	return providers.Stats{CPUPercent: float64(inst.Replica)}, nil
}

func TestSampleSlowStats(t *testing.T) {
	// The first read is slow: the other three go to the pool at once.
	st := &slowStats{meet: 3}
	s := sampler()
	s.Stats = st
	insts := []providers.Instance{replica(0, nil), replica(1, nil), replica(2, nil), replica(3, nil)}
	got := s.Sample(context.Background(), server(50), insts)
	for i, smp := range got {
		if want := (Sample{Replica: i, Ready: true, Values: map[string]float64{CPU: float64(i)}}); !reflect.DeepEqual(smp, want) {
			t.Errorf("sample %d = %+v, want %+v", i, smp, want)
		}
	}
	if st.most != 3 {
		t.Errorf("at most %d stats calls at once, want 3", st.most)
	}

	// A read that hangs ends at the timeout, alone.
	st = &slowStats{meet: 1, hang: map[int]bool{1: true}}
	s.Stats, s.Timeout = st, 200*time.Millisecond
	got = s.Sample(context.Background(), server(50), insts[:3])
	want := []Sample{
		{Replica: 0, Ready: true, Values: map[string]float64{CPU: 0}},
		{Replica: 1, Ready: true, Err: "cpu and memory: timed out after 200ms"},
		{Replica: 2, Ready: true, Values: map[string]float64{CPU: 2}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Sample =\n%+v\nwant\n%+v", got, want)
	}
}
