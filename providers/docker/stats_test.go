package docker

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"

	"github.com/tendhq/tend/providers"
	"github.com/tendhq/tend/providers/docker/dockertest"
	"github.com/tendhq/tend/spec"
)

func TestStatsOfThreads(t *testing.T) {
	for _, tc := range []struct {
		name    string
		current uint64
		want    int
		known   bool
	}{
		{"tasks counted", 7, 7, true},
		// An Engine without the pids cgroup says 0.
		{"no pids cgroup", 0, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s container.StatsResponse
			s.PidsStats.Current = tc.current
			got := statsOf(s)
			if got.Threads != tc.want || got.HasThreads != tc.known {
				t.Errorf("statsOf with pids %d: threads %d (known %v), want %d (known %v)", tc.current, got.Threads, got.HasThreads, tc.want, tc.known)
			}
			if got.HasConnections {
				t.Errorf("statsOf knows connections (%+v): the stats API has none", got)
			}
		})
	}
}

// TestStatsThreadsConnections holds connections open to a replica and reads
// them back from Stats. On an Engine of this host (a unix socket) the
// connections must be known; elsewhere they may not be.
func TestStatsThreadsConnections(t *testing.T) {
	p, managedBy := newTestProvider(t, "")
	buildImages(t, p, "1.0.0")
	port := dockertest.FreePorts(t, 1)
	d := desiredOf(testServer(t, "conns", "1.0.0", port), managedBy)
	res := p.StartReplica(ctxT(t), providers.StartRequest{Desired: d, Replica: 0})
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	waitHealth(t, addr, "1.0.0")
	// waitHealth leaves a keep-alive connection in the default transport.
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()

	// Each client keeps its connection alive after a request (the
	// server's idle timeout is minutes; a connection that sends nothing
	// would be cut after its header timeout).
	const n = 3
	for range n {
		tr := &http.Transport{}
		t.Cleanup(tr.CloseIdleConnections)
		resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get("http://" + addr + "/health")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	local := strings.HasPrefix(dockertest.Host(), "unix://")
	var st providers.Stats
	deadline := time.Now().Add(20 * time.Second)
	for {
		var err error
		t0 := time.Now()
		st, err = p.Stats(ctxT(t), res.Instance)
		took := time.Since(t0)
		switch {
		case err != nil:
		case !st.HasThreads || st.Threads < 1:
			err = fmt.Errorf("threads %d (known %v), want at least 1", st.Threads, st.HasThreads)
		case st.MemoryBytes <= 0:
			err = fmt.Errorf("memory %d bytes, want more than 0", st.MemoryBytes)
		case local && !st.HasConnections:
			err = fmt.Errorf("connections unknown on an Engine of this host (%s)", dockertest.Host())
		case st.HasConnections && st.Connections != n:
			err = fmt.Errorf("%d connections, want the %d held open", st.Connections, n)
		}
		if err == nil {
			t.Logf("stats %+v in %v", st, took)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Stats of a replica with %d connections: %v (%+v)", n, err, st)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestStatsCPUOfLimit: a replica with resources { cpu = "250m" } that is
// kept busy uses at most a quarter of a core, which Stats reports as
// percent of its limit (as the other providers do, and as cpu_percent in
// a scaling block means).
func TestStatsCPUOfLimit(t *testing.T) {
	p, managedBy := newTestProvider(t, "")
	buildImages(t, p, "1.0.0")
	port := dockertest.FreePorts(t, 1)
	s := testServer(t, "limited", "1.0.0", port)
	s.Args = []spec.Value{spec.Plain("--burn-per-request"), spec.Plain("20ms")}
	s.Resources = &spec.Resources{MilliCPU: 250}
	res := p.StartReplica(ctxT(t), providers.StartRequest{Desired: desiredOf(s, managedBy), Replica: 0})
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	waitHealth(t, addr, "1.0.0")
	ctx, stop := context.WithCancel(ctxT(t))
	defer stop()
	for range 4 {
		go func() {
			c := &http.Client{Timeout: 5 * time.Second}
			for ctx.Err() == nil {
				if resp, err := c.Get("http://" + addr + "/work"); err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}
		}()
	}
	// The cgroup holds the container to a quarter of a core: above 60%
	// of its limit is more than one core's 25% could say.
	var best float64
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		st, err := p.Stats(ctxT(t), res.Instance)
		if err != nil {
			t.Fatal(err)
		}
		best = max(best, st.CPUPercent)
		if best > 60 {
			break
		}
	}
	if best <= 60 || best > 130 {
		t.Fatalf("a busy replica limited to 250m used %.1f%% of its limit; want 60-130", best)
	}
	t.Logf("busy replica at %.1f%% of its 250m limit", best)
}
