package api

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestHealthz(t *testing.T) {
	h := newHarness(t, Config{}) // nothing configured: health stays open
	rec := h.do(httptest.NewRequest(http.MethodGet, "/healthz", nil))
	wantStatus(t, rec, http.StatusOK)
	if strings.TrimSpace(rec.Body.String()) != "ok" {
		t.Errorf("body = %q", rec.Body.String())
	}
	wantStatus(t, h.do(httptest.NewRequest(http.MethodPost, "/healthz", nil)), http.StatusMethodNotAllowed)
}

func TestReadyz(t *testing.T) {
	h := newHarness(t, Config{})
	rec := h.do(httptest.NewRequest(http.MethodGet, "/readyz", nil))
	wantStatus(t, rec, http.StatusServiceUnavailable)
	if e, _ := decodeJSON(t, rec)["error"].(string); e == "" {
		t.Error("503 without a reason")
	}
	h.b.setReady(true)
	rec = h.do(httptest.NewRequest(http.MethodGet, "/readyz", nil))
	wantStatus(t, rec, http.StatusOK)
	if strings.TrimSpace(rec.Body.String()) != "ok" {
		t.Errorf("body = %q", rec.Body.String())
	}
}

func TestUnknownPath(t *testing.T) {
	h := newHarness(t, allSecrets())
	rec := h.do(httptest.NewRequest(http.MethodGet, "/hooks/bitbucket", nil))
	wantStatus(t, rec, http.StatusNotFound)
	decodeJSON(t, rec)
}

func apiRequest(method, target, token string) *http.Request {
	req := httptest.NewRequest(method, target, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return req
}

func TestAPIDisabledWithoutToken(t *testing.T) {
	cfg := allSecrets()
	cfg.APIToken = ""
	h := newHarness(t, cfg)
	for _, r := range []*http.Request{
		apiRequest(http.MethodGet, "/api/v1/status", ""),
		apiRequest(http.MethodGet, "/api/v1/history", "anything"),
		apiRequest(http.MethodPost, "/api/v1/sync", ""),
	} {
		rec := h.do(r)
		wantStatus(t, rec, http.StatusForbidden)
		e, _ := decodeJSON(t, rec)["error"].(string)
		if !strings.Contains(e, "TEND_API_TOKEN") || strings.Contains(e, "--api-token") {
			t.Errorf("%s: error = %v", r.URL.Path, e)
		}
	}
	wantTriggers(t, h.b)
	// Health and metrics stay open.
	wantStatus(t, h.do(httptest.NewRequest(http.MethodGet, "/healthz", nil)), http.StatusOK)
	h.scrape(t)
}

func TestAPIBearerToken(t *testing.T) {
	wrongs := map[string]func(*http.Request){
		"missing":     func(*http.Request) {},
		"wrong":       func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+apiToken+"x") },
		"prefix":      func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+apiToken[:4]) },
		"basic":       func(r *http.Request) { r.Header.Set("Authorization", "Basic "+apiToken) },
		"bare token":  func(r *http.Request) { r.Header.Set("Authorization", apiToken) },
		"empty token": func(r *http.Request) { r.Header.Set("Authorization", "Bearer ") },
	}
	for name, set := range wrongs {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, allSecrets())
			for _, target := range []string{"/api/v1/status", "/api/v1/history"} {
				r := httptest.NewRequest(http.MethodGet, target, nil)
				set(r)
				rec := h.do(r)
				wantStatus(t, rec, http.StatusUnauthorized)
				if !strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "Bearer") {
					t.Errorf("WWW-Authenticate = %q", rec.Header().Get("WWW-Authenticate"))
				}
				decodeJSON(t, rec)
			}
			r := httptest.NewRequest(http.MethodPost, "/api/v1/sync", nil)
			set(r)
			wantStatus(t, h.do(r), http.StatusUnauthorized)
			wantTriggers(t, h.b)
			if strings.Contains(h.log.String(), apiToken[:6]) {
				t.Errorf("log shows the token:\n%s", h.log.String())
			}
			if n := len(h.log.Lines(t)); n != 3 {
				t.Errorf("%d log lines, want one per refusal (3)", n)
			}
		})
	}
}

func TestAPIStatus(t *testing.T) {
	h := newHarness(t, allSecrets())
	h.b.status = map[string]any{"servers": []map[string]any{{"name": "web-1", "healthy": true}}}
	rec := h.do(apiRequest(http.MethodGet, "/api/v1/status", apiToken))
	wantStatus(t, rec, http.StatusOK)
	resp := decodeJSON(t, rec)
	if s, _ := resp["servers"].([]any); len(s) != 1 {
		t.Errorf("response = %v", resp)
	}
	if !h.b.hadDeadline {
		t.Error("Status got a context without deadline")
	}
	// The scheme is case-insensitive.
	r := httptest.NewRequest(http.MethodGet, "/api/v1/status", nil)
	r.Header.Set("Authorization", "bearer "+apiToken)
	wantStatus(t, h.do(r), http.StatusOK)
}

func TestAPIStatusError(t *testing.T) {
	h := newHarness(t, allSecrets())
	h.b.statusErr = errors.New("open /var/lib/tend/state.db: permission denied")
	rec := h.do(apiRequest(http.MethodGet, "/api/v1/status", apiToken))
	wantStatus(t, rec, http.StatusInternalServerError)
	if e := decodeJSON(t, rec)["error"]; e != "status failed" {
		t.Errorf("error = %v", e)
	}
	if !strings.Contains(h.log.String(), "permission denied") {
		t.Errorf("the error is not logged:\n%s", h.log.String())
	}
}

func TestAPIHistory(t *testing.T) {
	h := newHarness(t, allSecrets())
	h.b.history = []map[string]any{{"server": "db-1", "revision": "abc123"}}
	cases := []struct {
		query  string
		want   int
		server string
		limit  int
	}{
		{"", http.StatusOK, "", DefaultHistoryLimit},
		{"?server=db-1&limit=5", http.StatusOK, "db-1", 5},
		{"?limit=100000", http.StatusOK, "", MaxHistoryLimit},
		{"?limit=0", http.StatusBadRequest, "", 0},
		{"?limit=-3", http.StatusBadRequest, "", 0},
		{"?limit=ten", http.StatusBadRequest, "", 0},
		{"?server=" + strings.Repeat("a", 300), http.StatusBadRequest, "", 0},
	}
	for _, c := range cases {
		h.b.historyArg = nil
		rec := h.do(apiRequest(http.MethodGet, "/api/v1/history"+c.query, apiToken))
		wantStatus(t, rec, c.want)
		if c.want != http.StatusOK {
			if e, _ := decodeJSON(t, rec)["error"].(string); e == "" || h.b.historyArg != nil {
				t.Errorf("%q: error %q, backend called with %v", c.query, e, h.b.historyArg)
			}
			continue
		}
		if h.b.historyArg[0] != c.server || h.b.historyArg[1] != c.limit {
			t.Errorf("%q: History(%v), want (%q, %d)", c.query, h.b.historyArg, c.server, c.limit)
		}
		if !strings.Contains(rec.Body.String(), `"revision":"abc123"`) {
			t.Errorf("%q: body %q", c.query, rec.Body.String())
		}
	}
}

func TestAPISync(t *testing.T) {
	h := newHarness(t, allSecrets())
	rec := h.do(apiRequest(http.MethodPost, "/api/v1/sync", apiToken))
	wantStatus(t, rec, http.StatusAccepted)
	if resp := decodeJSON(t, rec); resp["accepted"] != true || len(resp) != 1 {
		t.Errorf("response = %v", resp)
	}
	wantTriggers(t, h.b, "api")

	rec = h.do(apiRequest(http.MethodGet, "/api/v1/sync", apiToken))
	wantStatus(t, rec, http.StatusMethodNotAllowed)
	if rec.Header().Get("Allow") != "POST" {
		t.Errorf("Allow = %q", rec.Header().Get("Allow"))
	}
	wantStatus(t, h.do(apiRequest(http.MethodPost, "/api/v1/status", apiToken)), http.StatusMethodNotAllowed)
	wantTriggers(t, h.b, "api")
}

func TestAPIRateLimitShared(t *testing.T) {
	cfg := allSecrets()
	cfg.RateLimit = 2
	h := newHarness(t, cfg)
	wantStatus(t, h.do(apiRequest(http.MethodGet, "/api/v1/status", apiToken)), http.StatusOK)
	f := forges()[0]
	wantStatus(t, h.do(f.request(f.push(t), f.secret, false)), http.StatusAccepted)
	// Guessing tokens is limited too: the limit is checked before the token.
	rec := h.do(apiRequest(http.MethodPost, "/api/v1/sync", "guess"))
	wantStatus(t, rec, http.StatusTooManyRequests)
	if rec.Header().Get("Retry-After") != "30" {
		t.Errorf("Retry-After = %q", rec.Header().Get("Retry-After"))
	}
	// Health is never limited.
	for range 5 {
		wantStatus(t, h.do(httptest.NewRequest(http.MethodGet, "/healthz", nil)), http.StatusOK)
	}
}

func TestRateLimitDisabled(t *testing.T) {
	cfg := allSecrets()
	cfg.RateLimit = -1
	h := newHarness(t, cfg)
	for range 200 {
		wantStatus(t, h.do(apiRequest(http.MethodPost, "/api/v1/sync", apiToken)), http.StatusAccepted)
	}
}

func TestRateLimitDefault(t *testing.T) {
	h := newHarness(t, allSecrets())
	for i := range DefaultRateLimit {
		if rec := h.do(apiRequest(http.MethodPost, "/api/v1/sync", apiToken)); rec.Code != http.StatusAccepted {
			t.Fatalf("request %d: %d", i+1, rec.Code)
		}
	}
	wantStatus(t, h.do(apiRequest(http.MethodPost, "/api/v1/sync", apiToken)), http.StatusTooManyRequests)
}

func TestRateLimitIPv6Slash64(t *testing.T) {
	cfg := allSecrets()
	cfg.RateLimit = 1
	h := newHarness(t, cfg)
	req := func(addr string) *http.Request {
		r := apiRequest(http.MethodPost, "/api/v1/sync", apiToken)
		r.RemoteAddr = addr
		return r
	}
	wantStatus(t, h.do(req("[2001:db8:1:2::1]:5000")), http.StatusAccepted)
	wantStatus(t, h.do(req("[2001:db8:1:2::ffff]:5001")), http.StatusTooManyRequests)
	wantStatus(t, h.do(req("[2001:db8:1:3::1]:5000")), http.StatusAccepted)
}

func TestTrustedProxies(t *testing.T) {
	cfg := allSecrets()
	cfg.RateLimit = 1
	cfg.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	h := newHarness(t, cfg)
	req := func(peer, xff string) *http.Request {
		r := apiRequest(http.MethodPost, "/api/v1/sync", apiToken)
		r.RemoteAddr = peer
		if xff != "" {
			r.Header.Set("X-Forwarded-For", xff)
		}
		return r
	}
	// Behind the proxy, clients are told apart by X-Forwarded-For.
	wantStatus(t, h.do(req("10.0.0.5:443", "203.0.113.9")), http.StatusAccepted)
	wantStatus(t, h.do(req("10.0.0.5:443", "203.0.113.10")), http.StatusAccepted)
	// A client cannot escape by prepending a forged hop.
	wantStatus(t, h.do(req("10.0.0.5:443", "198.51.100.1, 203.0.113.9")), http.StatusTooManyRequests)
	// An untrusted peer's X-Forwarded-For is ignored.
	wantStatus(t, h.do(req("192.0.2.50:1000", "203.0.113.77")), http.StatusAccepted)
	wantStatus(t, h.do(req("192.0.2.50:1000", "203.0.113.78")), http.StatusTooManyRequests)
	if got := h.log.String(); !strings.Contains(got, "203.0.113.10") {
		t.Errorf("the log names the proxy, not the client:\n%s", got)
	}
}

func TestLimiterSweep(t *testing.T) {
	c := &fakeClock{t: time.Unix(0, 0)}
	l := newLimiter(60, c.Now)
	for i := range 100 {
		l.allow(netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}).String())
	}
	if len(l.buckets) != 100 {
		t.Fatalf("%d buckets", len(l.buckets))
	}
	c.Advance(2 * time.Minute)
	l.allow("198.51.100.1")
	if len(l.buckets) != 1 {
		t.Errorf("%d buckets after the sweep, want 1", len(l.buckets))
	}
}

func TestHTTPServerTimeouts(t *testing.T) {
	s := HTTPServer(":0", http.NotFoundHandler())
	if s.ReadHeaderTimeout == 0 || s.ReadTimeout == 0 || s.WriteTimeout == 0 || s.IdleTimeout == 0 {
		t.Errorf("missing timeouts: %+v", s)
	}
}
