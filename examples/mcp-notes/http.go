package main

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// How long a request waits for a free worker before it is answered 503.
const workerWait = 30 * time.Second

// app is the HTTP side of mcp-notes.
type app struct {
	cfg     Config
	store   *Store
	logger  *slog.Logger
	metrics *metrics
	mcp     *mcp.Server
	limiter atomic.Pointer[rateLimiter] // nil when rate limiting is off
	workers chan struct{}
	// rateLimiting describes the rate limiting in force.
	rateLimiting atomic.Value // string
	reloader     *reloader    // nil when nothing can be reloaded (tests)

	inFlight atomic.Int64 // requests holding or waiting for a worker
}

func newApp(cfg Config, store *Store, logger *slog.Logger) *app {
	a := &app{
		cfg:     cfg,
		store:   store,
		logger:  logger,
		workers: make(chan struct{}, cfg.Workers),
	}
	a.metrics = newMetrics(time.Now(), store.Count, a.inFlight.Load)
	a.mcp = newMCPServer(store, a.metrics, cfg.SamplingTool)
	if cfg.RateLimiting.Enabled {
		a.limiter.Store(newRateLimiter(cfg.RateLimiting.MaxRequests, time.Duration(cfg.RateLimiting.Window)*time.Second))
	}
	a.rateLimiting.Store(cfg.RateLimiting.String())
	return a
}

// handler is the whole HTTP handler: logging and metrics, then the rate
// limit, then the worker pool, then the routes.
func (a *app) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", a.serveHealth)
	mux.HandleFunc("GET /metrics", a.serveMetrics)
	mux.HandleFunc("GET /work", a.serveWork)
	mux.HandleFunc("POST /admin/reload", a.serveReload)
	if fault == faultNoMCP {
		mux.Handle("/mcp", http.NotFoundHandler())
		mux.Handle("/sse", http.NotFoundHandler())
	} else {
		getServer := func(*http.Request) *mcp.Server { return a.mcp }
		mux.Handle("/mcp", mcp.NewStreamableHTTPHandler(getServer,
			&mcp.StreamableHTTPOptions{
				SessionTimeout: 30 * time.Minute,
				Logger:         a.logger,
			}))
		// The HTTP+SSE transport of protocol 2024-11-05: GET /sse opens a
		// session's event stream, POST /sse?sessionid=ID sends it a message.
		mux.Handle("/sse", mcp.NewSSEHandler(getServer, nil))
	}
	return a.logRequests(a.rateLimit(a.limitWorkers(mux)))
}

func (a *app) serveHealth(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if fault == faultUnhealthy {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "failing", "version": version})
		return
	}
	problem, reloads := a.reloader.state()
	if problem != "" {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "failing", "version": version, "reason": problem})
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Status       string `json:"status"`
		Version      string `json:"version"`
		Notes        int    `json:"notes"`
		PID          int    `json:"pid"`
		Reloads      int    `json:"reloads"`
		RateLimiting string `json:"rate_limiting"`
	}{"ok", version, a.store.Count(), os.Getpid(), reloads, a.rateLimiting.Load().(string)})
}

func (a *app) serveMetrics(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err := a.metrics.write(w); err != nil {
		a.logger.Warn("writing /metrics", "err", err)
	}
}

// serveWork answers GET /work, which does nothing but cost what
// --burn-per-request says: an endpoint for load tests, which need no MCP
// session to reach it.
func (a *app) serveWork(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, struct {
		Version string `json:"version"`
		Burned  string `json:"burned"`
	}{version, a.cfg.BurnPerRequest.String()})
}

// burns reports whether r burns --burn-per-request: MCP messages and
// /work do; probes (/health) and scrapes (/metrics) do not, so that an
// idle replica stays idle.
func burns(r *http.Request) bool {
	switch r.URL.Path {
	case "/mcp", "/sse", "/work":
		return true
	}
	return false
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// isEventStream reports whether r opens a long-lived MCP event stream
// (GET /mcp, GET /sse), which stays open for as long as the client's session
// and so neither takes a worker nor counts as in flight.
func isEventStream(r *http.Request) bool {
	return r.Method == http.MethodGet && (r.URL.Path == "/mcp" || r.URL.Path == "/sse")
}

// logRequests logs one line per request and counts it in the metrics.
func (a *app) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		code := rec.status()
		a.metrics.request(r.URL.Path, code)
		attrs := []any{
			"method", r.Method,
			"path", r.URL.Path,
			"code", code,
			"duration", time.Since(start).Round(time.Microsecond),
			"remote", clientIP(r),
		}
		// Behind a proxy that says where the request first went (the
		// Kubernetes API server's pod proxy does), log that too.
		if f := r.Header.Get("X-Forwarded-Uri"); f != "" {
			attrs = append(attrs, "forwarded_uri", f)
		}
		a.logger.Info("request", attrs...)
	})
}

// rateLimit answers 429 to a client IP over its budget. /health and /metrics
// are exempt, so that probes and scrapes never fail because of it.
func (a *app) rateLimit(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		limiter := a.limiter.Load()
		if limiter == nil || r.URL.Path == "/health" || r.URL.Path == "/metrics" || r.URL.Path == "/admin/reload" {
			next.ServeHTTP(w, r)
			return
		}
		ok, retry := limiter.allow(clientIP(r), time.Now())
		if !ok {
			secs := int(math.Ceil(retry.Seconds()))
			w.Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
			http.Error(w, fmt.Sprintf("rate limit exceeded: at most %d requests per %ds; retry in %ds",
				limiter.max, int(limiter.window.Seconds()), max(secs, 1)), http.StatusTooManyRequests)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// limitWorkers lets at most cfg.Workers requests run at once; the others
// wait for a free worker, up to workerWait, then get 503. A request that
// burns (see burns) does so holding its worker.
func (a *app) limitWorkers(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isEventStream(r) {
			next.ServeHTTP(w, r)
			return
		}
		a.inFlight.Add(1)
		defer a.inFlight.Add(-1)
		t := time.NewTimer(workerWait)
		defer t.Stop()
		select {
		case a.workers <- struct{}{}:
		case <-r.Context().Done():
			http.Error(w, "request cancelled while waiting for a worker", http.StatusServiceUnavailable)
			return
		case <-t.C:
			w.Header().Set("Retry-After", "1")
			http.Error(w, "server busy: every worker is in use", http.StatusServiceUnavailable)
			return
		}
		defer func() { <-a.workers }()
		if a.cfg.BurnPerRequest > 0 && burns(r) {
			burnCPU(a.cfg.BurnPerRequest)
		}
		next.ServeHTTP(w, r)
	})
}

// closeSessionsWhenIdle waits until no request is in flight (or for at most
// wait) and then closes every MCP session, which ends their event streams.
func (a *app) closeSessionsWhenIdle(wait time.Duration) {
	deadline := time.Now().Add(wait)
	for a.inFlight.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	for ss := range a.mcp.Sessions() {
		_ = ss.Close()
	}
}

// clientIP is the IP address of the peer. X-Forwarded-For is not trusted.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// statusRecorder remembers the status code written through it. It passes
// Flush on, and Unwrap lets http.ResponseController reach the real writer,
// which the MCP event streams need.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.code == 0 && code >= 200 {
		s.code = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusRecorder) Flush() {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (s *statusRecorder) status() int {
	if s.code == 0 {
		return http.StatusOK
	}
	return s.code
}

// rateLimiter allows each key (a client IP) at most max requests in each
// fixed window, which starts at the key's first request.
type rateLimiter struct {
	max    int
	window time.Duration

	mu        sync.Mutex
	clients   map[string]*rateWindow
	lastSweep time.Time
}

type rateWindow struct {
	start time.Time
	count int
}

func newRateLimiter(maxRequests int, window time.Duration) *rateLimiter {
	return &rateLimiter{max: maxRequests, window: window, clients: map[string]*rateWindow{}}
}

// allow counts a request from key at now; if key is over its budget, it
// returns false and how long until its window ends.
func (l *rateLimiter) allow(key string, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.lastSweep) >= l.window { // forget the clients whose window is over
		for k, w := range l.clients {
			if now.Sub(w.start) >= l.window {
				delete(l.clients, k)
			}
		}
		l.lastSweep = now
	}
	w := l.clients[key]
	if w == nil || now.Sub(w.start) >= l.window {
		w = &rateWindow{start: now}
		l.clients[key] = w
	}
	if w.count >= l.max {
		return false, w.start.Add(l.window).Sub(now)
	}
	w.count++
	return true, 0
}
