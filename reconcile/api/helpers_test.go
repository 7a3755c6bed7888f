package api

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"
)

// fakeBackend records triggers and serves canned status and history.
type fakeBackend struct {
	mu       sync.Mutex
	triggers []string
	ready    bool

	status      any
	statusErr   error
	hadDeadline bool // the last Status call's context had a deadline
	history     any
	historyArg  []any // server, limit of the last History call
}

func (f *fakeBackend) Trigger(reason string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.triggers = append(f.triggers, reason)
}

func (f *fakeBackend) Ready() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ready
}

func (f *fakeBackend) setReady(v bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ready = v
}

func (f *fakeBackend) Status(ctx context.Context) (any, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, f.hadDeadline = ctx.Deadline()
	return f.status, f.statusErr
}

func (f *fakeBackend) History(_ context.Context, server string, limit int) (any, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.historyArg = []any{server, limit}
	return f.history, nil
}

func (f *fakeBackend) Triggers() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.triggers...)
}

// fakeClock is a settable clock for the rate limiter.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// syncBuffer is a bytes.Buffer safe for the logger and the test at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Lines parses the JSON log lines written so far.
func (s *syncBuffer) Lines(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(s.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

type harness struct {
	srv   *server
	b     *fakeBackend
	m     *Metrics
	reg   *prometheus.Registry
	log   *syncBuffer
	clock *fakeClock
}

// Secrets used across the tests; none is a prefix of another.
const (
	ghSecret      = "gh-s3cret-Zq8w"
	glToken       = "gl-t0ken-Xr4p"
	giteaSecret   = "gitea-s3cret-Hn2v"
	genericSecret = "generic-s3cret-Lk7m"
	apiToken      = "api-t0ken-Pd5c"
)

// allSecrets configures every endpoint with the secrets above and
// TrackedRef refs/heads/main.
func allSecrets() Config {
	return Config{
		GitHubSecret:  ghSecret,
		GitLabToken:   glToken,
		GiteaSecret:   giteaSecret,
		GenericSecret: genericSecret,
		TrackedRef:    "refs/heads/main",
		APIToken:      apiToken,
	}
}

func newHarness(t *testing.T, cfg Config) *harness {
	t.Helper()
	h := &harness{
		b:     &fakeBackend{},
		reg:   prometheus.NewRegistry(),
		log:   &syncBuffer{},
		clock: &fakeClock{t: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)},
	}
	h.m = NewMetrics(h.reg)
	l := logrus.New()
	l.SetOutput(h.log)
	l.SetFormatter(&logrus.JSONFormatter{})
	l.SetLevel(logrus.DebugLevel)
	cfg.Log = l
	h.srv = newServer(cfg, h.b, h.m, h.clock.Now)
	return h
}

// do serves req and returns the recorded response.
func (h *harness) do(req *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.srv.ServeHTTP(rec, req)
	return rec
}

func testdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// withRef returns payload with its "ref" replaced.
func withRef(t *testing.T, payload []byte, ref string) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(payload, &m); err != nil {
		t.Fatal(err)
	}
	m["ref"] = ref
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func hmacHex(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil))
}

func decodeJSON(t *testing.T, rec *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("Content-Type = %q, want JSON; body %q", ct, rec.Body.String())
	}
	var m map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
		t.Fatalf("body %q: %v", rec.Body.String(), err)
	}
	return m
}

func wantStatus(t *testing.T, rec *httptest.ResponseRecorder, code int) {
	t.Helper()
	if rec.Code != code {
		t.Fatalf("status = %d, want %d; body %q", rec.Code, code, rec.Body.String())
	}
}

func wantTriggers(t *testing.T, b *fakeBackend, want ...string) {
	t.Helper()
	got := b.Triggers()
	if len(got) != len(want) {
		t.Fatalf("triggers = %q, want %q", got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("triggers = %q, want %q", got, want)
		}
	}
}

// scrape returns the text exposition of h's /metrics.
func (h *harness) scrape(t *testing.T) string {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	rec := h.do(req)
	wantStatus(t, rec, http.StatusOK)
	b, _ := io.ReadAll(rec.Body)
	return string(b)
}
