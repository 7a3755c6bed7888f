package main

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"
)

// threadCost is the CPU time the calling goroutine's thread spends in f.
func threadCost(t *testing.T, f func()) time.Duration {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	before, ok := threadCPU()
	if !ok {
		t.Skip("this system does not tell a thread's CPU time")
	}
	f()
	after, _ := threadCPU()
	return after - before
}

func TestBurnCPU(t *testing.T) {
	for _, d := range []time.Duration{time.Millisecond, 30 * time.Millisecond} {
		// At least d, and not much more: the clock is read every few
		// microseconds of work.
		if got := threadCost(t, func() { burnCPU(d) }); got < d || got > d+10*time.Millisecond {
			t.Errorf("burnCPU(%s) used %s of CPU", d, got)
		}
	}
	if got := threadCost(t, func() { burnCPU(0) }); got > time.Millisecond {
		t.Errorf("burnCPU(0) used %s of CPU", got)
	}
}

// GET /work, and every MCP request, burns --burn-per-request holding a
// worker; probes and scrapes do not.
func TestBurnPerRequest(t *testing.T) {
	const burn = 20 * time.Millisecond
	cfg := defaultConfig()
	cfg.BurnPerRequest = burn
	a := newApp(cfg, &Store{notes: map[string]Note{}}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	h := a.handler()

	serve := func(method, path string) (*httptest.ResponseRecorder, time.Duration) {
		rec := httptest.NewRecorder()
		cost := threadCost(t, func() { h.ServeHTTP(rec, httptest.NewRequest(method, path, strings.NewReader("{}"))) })
		return rec, cost
	}
	rec, cost := serve("GET", "/work")
	if rec.Code != http.StatusOK || cost < burn {
		t.Errorf("GET /work: %d %s, cost %s of CPU, want 200 and at least %s", rec.Code, rec.Body, cost, burn)
	}
	var body struct{ Version, Burned string }
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body.Burned != "20ms" || body.Version != version {
		t.Errorf("GET /work body %s (%v)", rec.Body, err)
	}
	// A bad MCP message still costs its burn: the server did the work of
	// reading it before it refused it.
	if _, cost := serve("POST", "/mcp"); cost < burn {
		t.Errorf("POST /mcp cost %s of CPU, want at least %s", cost, burn)
	}
	for _, path := range []string{"/health", "/metrics"} {
		if rec, cost := serve("GET", path); rec.Code != http.StatusOK || cost >= burn/2 {
			t.Errorf("GET %s: %d, cost %s of CPU, want 200 and no burn", path, rec.Code, cost)
		}
	}
	var m strings.Builder
	if err := a.metrics.write(&m); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(m.String(), `mcp_notes_http_requests_total{path="/work",code="200"} 1`) {
		t.Errorf("/metrics does not count GET /work:\n%s", m.String())
	}
}

func TestBurnFlag(t *testing.T) {
	cfg, err := loadConfig(mustParseFlags(t, "--burn-per-request", "15ms"), envMap(nil))
	if err != nil || cfg.BurnPerRequest != 15*time.Millisecond {
		t.Errorf("--burn-per-request 15ms: %v, %v", cfg.BurnPerRequest, err)
	}
	for _, bad := range []string{"-1ms", "2s"} {
		if _, err := loadConfig(mustParseFlags(t, "--burn-per-request", bad), envMap(nil)); err == nil || !strings.Contains(err.Error(), "burn-per-request must be between 0 and 1s") {
			t.Errorf("--burn-per-request %s: %v", bad, err)
		}
	}
}
