package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// The bounds of a load a script may start: loopback only (the host is not
// a parameter), a fixed rate, a few replica ports, a limited time.
const (
	loadMaxRate     = 500
	loadMaxPorts    = 16
	loadMaxDuration = 5 * time.Minute
	// loadProbeEvery is how often the balancer looks for the replicas
	// that accept connections.
	loadProbeEvery = 250 * time.Millisecond
	loadTimeout    = 5 * time.Second // of one request
	loadMaxWorkers = 64              // requests in flight at most
)

var (
	loadsMu sync.Mutex
	loads   = map[*testscript.TestScript]*loadGen{}
)

// cmdLoad drives HTTP load at a fleet of replicas on 127.0.0.1, as a load
// balancer in front of it would pass it on:
//
//	load start [-rate N] [-for D] [-path P] PORT [COUNT]
//	load stop
//
// start sends GET http://127.0.0.1:PORT+i/P (path /work by default) at N
// requests a second (default 40) to the replicas on PORT … PORT+COUNT-1
// that accept connections, round robin; it looks for them every 250 ms,
// and drops one at once when it refuses a connection. It fails when none
// accepts connections. The load runs in the background until stop, for at
// most D (default 2m), and ends with the script in any case. stop ends it
// and prints what it saw: requests, failures, and how many requests each
// replica served.
func cmdLoad(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) == 0 {
		ts.Fatalf("usage: load start [-rate N] [-for D] [-path P] PORT [COUNT] | load stop")
	}
	switch args[0] {
	case "start":
		loadsMu.Lock()
		running := loads[ts] != nil
		loadsMu.Unlock()
		if running {
			ts.Fatalf("a load is running already; load stop first")
		}
		g, err := newLoadGen(args[1:])
		ts.Check(err)
		ts.Check(g.start())
		loadsMu.Lock()
		loads[ts] = g
		loadsMu.Unlock()
		ts.Defer(func() { takeLoad(ts).stop() })
		fmt.Fprintf(ts.Stdout(), "load: %d/s at http://127.0.0.1:%d-%d%s for at most %s\n", g.rate, g.ports[0], g.ports[len(g.ports)-1], g.path, g.maxFor)
	case "stop":
		g := takeLoad(ts)
		if g == nil {
			ts.Fatalf("no load is running")
		}
		g.stop()
		g.report(ts.Stdout())
	default:
		ts.Fatalf("usage: load start [-rate N] [-for D] [-path P] PORT [COUNT] | load stop")
	}
}

// takeLoad removes the script's load from the table and returns it (nil
// when there is none, or it was stopped already).
func takeLoad(ts *testscript.TestScript) *loadGen {
	loadsMu.Lock()
	defer loadsMu.Unlock()
	g := loads[ts]
	delete(loads, ts)
	return g
}

// loadGen is one load: a vegeta attack, and a client-side balancer that
// spreads it over the replicas that accept connections.
type loadGen struct {
	rate   int
	maxFor time.Duration
	path   string
	ports  []int

	attacker *vegeta.Attacker
	up       atomic.Pointer[[]int] // the ports accepting connections now
	next     atomic.Uint64
	done     chan struct{} // closed when the attack has ended and every result is in
	quit     chan struct{} // stops the prober
	stopOnce sync.Once

	mu      sync.Mutex
	metrics vegeta.Metrics
	served  map[int]int    // successful requests by port
	errs    map[string]int // failures by kind
	began   time.Time
	ended   time.Time
}

func newLoadGen(args []string) (*loadGen, error) {
	fs := flag.NewFlagSet("load start", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	g := &loadGen{served: map[int]int{}, errs: map[string]int{}, done: make(chan struct{}), quit: make(chan struct{})}
	fs.IntVar(&g.rate, "rate", 40, "requests a second")
	fs.DurationVar(&g.maxFor, "for", 2*time.Minute, "how long at most")
	fs.StringVar(&g.path, "path", "/work", "the path requested")
	if err := fs.Parse(args); err != nil {
		return nil, fmt.Errorf("load start: %v", err)
	}
	if fs.NArg() < 1 || fs.NArg() > 2 {
		return nil, fmt.Errorf("load start: want PORT [COUNT], got %q", fs.Args())
	}
	first, err := strconv.Atoi(fs.Arg(0))
	if err != nil || first < 1 {
		return nil, fmt.Errorf("load start: bad port %q", fs.Arg(0))
	}
	count := 1
	if fs.NArg() == 2 {
		if count, err = strconv.Atoi(fs.Arg(1)); err != nil || count < 1 || count > loadMaxPorts {
			return nil, fmt.Errorf("load start: COUNT must be 1 to %d, got %q", loadMaxPorts, fs.Arg(1))
		}
	}
	if first+count-1 > 65535 {
		return nil, fmt.Errorf("load start: ports %d-%d are out of range", first, first+count-1)
	}
	if g.rate < 1 || g.rate > loadMaxRate {
		return nil, fmt.Errorf("load start: -rate must be 1 to %d, got %d", loadMaxRate, g.rate)
	}
	if g.maxFor <= 0 || g.maxFor > loadMaxDuration {
		return nil, fmt.Errorf("load start: -for must be more than 0 and at most %s, got %s", loadMaxDuration, g.maxFor)
	}
	if !strings.HasPrefix(g.path, "/") {
		return nil, fmt.Errorf("load start: -path must start with /, got %q", g.path)
	}
	for i := range count {
		g.ports = append(g.ports, first+i)
	}
	return g, nil
}

// start probes the replicas once, then starts the attack, the prober and
// the collector of results.
func (g *loadGen) start() error {
	g.probe()
	if len(*g.up.Load()) == 0 {
		return fmt.Errorf("load start: no replica accepts connections on 127.0.0.1:%d-%d", g.ports[0], g.ports[len(g.ports)-1])
	}
	g.attacker = vegeta.NewAttacker(
		vegeta.Proxy(nil), // loopback, never through a proxy of the environment
		vegeta.LocalAddr(net.IPAddr{IP: net.IPv4(127, 0, 0, 1)}),
		vegeta.Timeout(loadTimeout),
		vegeta.MaxWorkers(loadMaxWorkers),
		vegeta.Redirects(vegeta.NoFollow),
		vegeta.KeepAlive(true),
	)
	g.began = time.Now()
	results := g.attacker.Attack(g.target, vegeta.Rate{Freq: g.rate, Per: time.Second}, g.maxFor, "tend-load")
	go func() {
		t := time.NewTicker(loadProbeEvery)
		defer t.Stop()
		for {
			select {
			case <-g.quit:
				return
			case <-t.C:
				g.probe()
			}
		}
	}()
	go func() {
		defer close(g.done)
		for res := range results {
			g.collect(res)
		}
		g.mu.Lock()
		g.ended = time.Now()
		g.metrics.Close()
		g.mu.Unlock()
	}()
	return nil
}

// stop ends the attack (if it has not ended by itself) and waits for its
// last results.
func (g *loadGen) stop() {
	if g == nil {
		return
	}
	g.stopOnce.Do(func() {
		g.attacker.Stop()
		<-g.done
		close(g.quit)
	})
}

// target is the attack's vegeta.Targeter: the next replica that accepts
// connections, round robin. With none, the first port (the request fails,
// and counts as failed, as behind a balancer with no backend).
func (g *loadGen) target(t *vegeta.Target) error {
	port := g.ports[0]
	if up := *g.up.Load(); len(up) > 0 {
		port = up[g.next.Add(1)%uint64(len(up))]
	}
	t.Method = "GET"
	t.URL = "http://127.0.0.1:" + strconv.Itoa(port) + g.path
	return nil
}

// probe finds the ports that accept a TCP connection now.
func (g *loadGen) probe() {
	var up []int
	for _, p := range g.ports {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(p), 200*time.Millisecond)
		if err == nil {
			c.Close()
			up = append(up, p)
		}
	}
	g.up.Store(&up)
}

// drop takes port out of rotation until the next probe finds it again.
func (g *loadGen) drop(port int) {
	for {
		old := g.up.Load()
		if !slices.Contains(*old, port) {
			return
		}
		up := slices.DeleteFunc(slices.Clone(*old), func(p int) bool { return p == port })
		if g.up.CompareAndSwap(old, &up) {
			return
		}
	}
}

func (g *loadGen) collect(res *vegeta.Result) {
	res.Body = nil
	port := 0
	if u, err := url.Parse(res.URL); err == nil {
		port, _ = strconv.Atoi(u.Port())
	}
	kind := ""
	if res.Error != "" {
		kind = errorKind(res.Error)
		if kind == "connection refused" {
			g.drop(port)
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.metrics.Add(res)
	if kind == "" {
		g.served[port]++
	} else {
		g.errs[kind]++
	}
}

// errorKind is a failure without its URL and addresses, so that failures
// of one kind count together.
func errorKind(e string) string {
	for _, k := range []string{"connection refused", "connection reset", "Client.Timeout", "EOF"} {
		if strings.Contains(e, k) {
			return k
		}
	}
	if i := strings.LastIndex(e, ": "); i >= 0 {
		return e[i+2:]
	}
	return e // an HTTP status, such as "503 Service Unavailable"
}

// report prints what the load saw.
func (g *loadGen) report(w io.Writer) {
	g.mu.Lock()
	defer g.mu.Unlock()
	m := &g.metrics
	failed := 0
	for _, n := range g.errs {
		failed += n
	}
	took := g.ended.Sub(g.began).Seconds()
	fmt.Fprintf(w, "load: %d requests in %.1fs (%.1f/s): %d ok (%.1f%%), %d failed\n",
		m.Requests, took, float64(m.Requests)/max(took, 0.001), int(m.Requests)-failed, 100*m.Success, failed)
	ports := make([]int, 0, len(g.served))
	for p := range g.served {
		ports = append(ports, p)
	}
	sort.Ints(ports)
	var by []string
	for _, p := range ports {
		by = append(by, fmt.Sprintf("%d: %d", p, g.served[p]))
	}
	fmt.Fprintf(w, "load: served by %d replicas (%s)\n", len(ports), strings.Join(by, ", "))
	r := func(d time.Duration) time.Duration { return d.Round(100 * time.Microsecond) }
	fmt.Fprintf(w, "load: latency p50 %s, p95 %s, max %s\n", r(m.Latencies.P50), r(m.Latencies.P95), r(m.Latencies.Max))
	kinds := make([]string, 0, len(g.errs))
	for k := range g.errs {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		fmt.Fprintf(w, "load: failed: %d × %s\n", g.errs[k], k)
	}
}

// The balancer spreads the load over the replicas that accept connections,
// finds a replica that starts, and drops one that stops.
func TestLoadGen(t *testing.T) {
	base, err := freePorts(3)
	if err != nil {
		t.Fatal(err)
	}
	serve := func(port int) *http.Server {
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})}
		go srv.Serve(ln)
		t.Cleanup(func() { srv.Close() })
		return srv
	}
	if _, err := newLoadGen([]string{"-rate", "100", "-for", "20s", strconv.Itoa(base), "3"}); err != nil {
		t.Fatal(err)
	}
	for _, bad := range [][]string{{"-rate", "501", "8000"}, {"-for", "6m", "8000"}, {"8000", "17"}, {"-path", "work", "8000"}, {"65535", "2"}} {
		if _, err := newLoadGen(bad); err == nil {
			t.Errorf("load start %q is accepted", bad)
		}
	}
	g, err := newLoadGen([]string{"-rate", "100", "-for", "20s", strconv.Itoa(base), "3"})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.start(); err == nil {
		g.stop()
		t.Fatal("a load started with no replica listening")
	}

	first := serve(base)
	g, err = newLoadGen([]string{"-rate", "100", "-for", "20s", strconv.Itoa(base), "3"})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.start(); err != nil {
		t.Fatal(err)
	}
	defer g.stop()
	served := func(port int) int {
		g.mu.Lock()
		defer g.mu.Unlock()
		return g.served[port]
	}
	waitServed := func(port int) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); served(port) < 10; time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("port %d served %d requests", port, served(port))
			}
		}
	}
	waitServed(base)
	serve(base + 2) // a replica starts: the next probe finds it
	waitServed(base + 2)
	first.Close() // and one stops
	before := served(base)
	time.Sleep(2 * loadProbeEvery)
	g.stop()
	if served(base+1) != 0 || served(base) > before+5 {
		t.Errorf("requests went where no replica listens: %v (port %d had %d before it stopped)", g.served, base, before)
	}
	var out strings.Builder
	g.report(&out)
	if !strings.Contains(out.String(), "served by 2 replicas") {
		t.Errorf("report:\n%s", out.String())
	}
	for line := range strings.Lines(out.String()) {
		if strings.HasPrefix(line, "load: failed:") && !strings.Contains(line, "connection refused") {
			t.Errorf("a failure other than the stopped replica's: %s", line)
		}
	}
	t.Log(out.String())
}
