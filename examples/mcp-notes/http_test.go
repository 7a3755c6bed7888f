package main

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestRateLimiter(t *testing.T) {
	l := newRateLimiter(2, 10*time.Second)
	t0 := time.Unix(1_000_000, 0)
	for i := range 2 {
		if ok, _ := l.allow("a", t0.Add(time.Duration(i)*time.Second)); !ok {
			t.Fatalf("request %d refused", i+1)
		}
	}
	ok, retry := l.allow("a", t0.Add(4*time.Second))
	if ok || retry != 6*time.Second {
		t.Errorf("third request in the window: ok=%v retry=%v, want refused, 6s", ok, retry)
	}
	if ok, _ := l.allow("b", t0.Add(4*time.Second)); !ok {
		t.Error("another client is refused")
	}
	if ok, _ := l.allow("a", t0.Add(10*time.Second)); !ok {
		t.Error("a new window is refused")
	}
	// Old windows are forgotten.
	l.allow("c", t0.Add(30*time.Second))
	if len(l.clients) != 1 {
		t.Errorf("%d clients remembered, want 1", len(l.clients))
	}
}

func TestLimitWorkers(t *testing.T) {
	cfg := defaultConfig()
	cfg.Workers = 2
	a := newApp(cfg, &Store{notes: map[string]Note{}}, slog.New(slog.NewTextHandler(io.Discard, nil)))

	var running, most atomic.Int32
	release := make(chan struct{})
	h := a.limitWorkers(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := running.Add(1)
		defer running.Add(-1)
		for {
			m := most.Load()
			if n <= m || most.CompareAndSwap(m, n) {
				break
			}
		}
		<-release
	}))
	var wg sync.WaitGroup
	for range 5 {
		wg.Go(func() {
			h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("POST", "/mcp", nil))
		})
	}
	deadline := time.Now().Add(5 * time.Second)
	for a.inFlight.Load() != 5 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	if got := running.Load(); got != 2 {
		t.Errorf("%d requests running with 2 workers", got)
	}
	close(release)
	wg.Wait()
	if most.Load() != 2 {
		t.Errorf("at most %d requests ran at once, want 2", most.Load())
	}
	if a.inFlight.Load() != 0 {
		t.Errorf("in flight after all done: %d", a.inFlight.Load())
	}
}

func TestMetricsFormat(t *testing.T) {
	m := newMetrics(time.Unix(1700000000, 500_000_000), func() int { return 7 }, func() int64 { return 1 })
	m.request("/mcp", 200)
	m.request("/mcp", 200)
	m.request("/nope", 404)
	m.toolCall("add_note")
	var b strings.Builder
	if err := m.write(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"mcp_notes_build_info{version=\"" + version + "\"} 1\n",
		"mcp_notes_notes 7\n",
		"mcp_notes_http_requests_total{path=\"/mcp\",code=\"200\"} 2\n",
		"mcp_notes_http_requests_total{path=\"other\",code=\"404\"} 1\n",
		"mcp_notes_tool_calls_total{tool=\"add_note\"} 1\n",
		"mcp_notes_tool_calls_total{tool=\"list_notes\"} 0\n",
		"process_start_time_seconds 1700000000.5\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("metrics lack %q:\n%s", want, out)
		}
	}
	// Every sample belongs to a family declared before it.
	declared := map[string]bool{}
	for line := range strings.Lines(out) {
		line = strings.TrimSuffix(line, "\n")
		if name, ok := strings.CutPrefix(line, "# TYPE "); ok {
			declared[strings.Fields(name)[0]] = true
			continue
		}
		if strings.HasPrefix(line, "#") {
			continue
		}
		name, _, _ := strings.Cut(line, "{")
		name, _, _ = strings.Cut(name, " ")
		if !declared[name] {
			t.Errorf("sample %q before its # TYPE line", line)
		}
	}
	if got := labelValue("a\"b\\c\nd"); got != `"a\"b\\c\nd"` {
		t.Errorf("labelValue = %s", got)
	}
}

func TestStatusRecorder(t *testing.T) {
	rec := httptest.NewRecorder()
	s := &statusRecorder{ResponseWriter: rec}
	if err := http.NewResponseController(s).Flush(); err != nil {
		t.Errorf("Flush through the recorder: %v", err)
	}
	if s.status() != 200 || !rec.Flushed {
		t.Errorf("status %d, flushed %v", s.status(), rec.Flushed)
	}
	s = &statusRecorder{ResponseWriter: httptest.NewRecorder()}
	s.WriteHeader(http.StatusTeapot)
	s.WriteHeader(http.StatusOK) // ignored, as by net/http
	if s.status() != http.StatusTeapot {
		t.Errorf("status = %d", s.status())
	}
}

func TestLogRequestsForwardedURI(t *testing.T) {
	var log strings.Builder
	a := newApp(defaultConfig(), &Store{notes: map[string]Note{}}, slog.New(slog.NewTextHandler(&log, nil)))
	h := a.logRequests(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/health", nil))
	req := httptest.NewRequest("GET", "/health", nil)
	req.Header.Set("X-Forwarded-Uri", "/api/v1/namespaces/mcp/pods/notes-1:8080/proxy/health")
	h.ServeHTTP(httptest.NewRecorder(), req)
	lines := strings.Split(strings.TrimSpace(log.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d log lines, want 2:\n%s", len(lines), log.String())
	}
	if strings.Contains(lines[0], "forwarded_uri") {
		t.Errorf("a direct request logs a forwarded URI: %s", lines[0])
	}
	if !strings.Contains(lines[1], "path=/health") || !strings.Contains(lines[1], "forwarded_uri=/api/v1/namespaces/mcp/pods/notes-1:8080/proxy/health") {
		t.Errorf("a proxied request's line: %s", lines[1])
	}
}
