package api

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestDashboardMountAndRateLimit: Config.Dashboard serves what no other
// route takes, except under /api/ and /hooks/, and its POSTs draw on the
// same per-client budget as the API (a token guessed through the sign-in
// form is limited as one guessed through the API is).
func TestDashboardMountAndRateLimit(t *testing.T) {
	cfg := allSecrets()
	cfg.RateLimit = 2
	seen := 0
	cfg.Dashboard = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen++
		_, _ = io.WriteString(w, "dashboard "+r.URL.Path)
	})
	h := newHarness(t, cfg)
	for _, path := range []string{"/", "/servers/a", "/ui/app.js"} {
		rec := h.do(httptest.NewRequest(http.MethodGet, path, nil))
		if rec.Code != 200 || rec.Body.String() != "dashboard "+path {
			t.Fatalf("GET %s: %d %q", path, rec.Code, rec.Body.String())
		}
	}
	for _, path := range []string{"/api/v2/status", "/hooks/unknown"} {
		rec := h.do(httptest.NewRequest(http.MethodGet, path, nil))
		if rec.Code != 404 || !strings.Contains(rec.Body.String(), `"error":"not found"`) {
			t.Fatalf("GET %s: %d %q, want the JSON 404", path, rec.Code, rec.Body.String())
		}
	}
	// GETs are not limited; POSTs share the API's budget of 2.
	wantStatus(t, h.do(apiRequest(http.MethodGet, "/api/v1/status", apiToken)), http.StatusOK)
	wantStatus(t, h.do(httptest.NewRequest(http.MethodPost, "/login", nil)), http.StatusOK)
	rec := h.do(httptest.NewRequest(http.MethodPost, "/login", nil))
	wantStatus(t, rec, http.StatusTooManyRequests)
	if seen != 4 {
		t.Fatalf("the dashboard saw %d requests, want 4 (the limited POST never reaches it)", seen)
	}
}

func TestNoDashboardMeansJSON404(t *testing.T) {
	h := newHarness(t, allSecrets())
	rec := h.do(httptest.NewRequest(http.MethodGet, "/", nil))
	if rec.Code != 404 || !strings.Contains(rec.Body.String(), `"error":"not found"`) {
		t.Fatalf("GET / without a dashboard: %d %q", rec.Code, rec.Body.String())
	}
}
