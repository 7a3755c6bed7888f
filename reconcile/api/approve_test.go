package api

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"
)

// approverBackend is a fakeBackend that records decisions.
type approverBackend struct {
	fakeBackend
	got []DecisionRequest
}

func (a *approverBackend) Decide(_ context.Context, req DecisionRequest) (any, error) {
	if req.Server == "nochange" {
		return nil, &RefusedError{Msg: "nochange has no change in the plan of revision dir-1"}
	}
	a.got = append(a.got, req)
	return map[string]string{"server": req.Server, "by": req.By}, nil
}

func (a *approverBackend) Approvals(context.Context, string, int) (any, error) {
	return a.got, nil
}

// TestDecisionEndpoints: POST /api/v1/approve and /reject need the API
// token, a JSON body naming the server, and a reason for a rejection (the
// backend says so); a refusal is 409 with its reason; a decision is
// counted; a backend without approvals answers 404.
func TestDecisionEndpoints(t *testing.T) {
	b := &approverBackend{}
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	l := logrus.New()
	l.SetOutput(&syncBuffer{})
	cfg := allSecrets()
	cfg.Log = l
	cfg.RateLimit = -1
	srv := newServer(cfg, b, m, time.Now)
	post := func(path, body, token string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		return rec
	}
	if rec := post("/api/v1/approve", `{"server":"search"}`, ""); rec.Code != http.StatusUnauthorized {
		t.Errorf("without a token: %d %s", rec.Code, rec.Body)
	}
	if rec := post("/api/v1/approve", `{"server":"search"}`, "wrong"); rec.Code != http.StatusUnauthorized {
		t.Errorf("with a wrong token: %d %s", rec.Code, rec.Body)
	}
	if rec := post("/api/v1/approve", `not json`, apiToken); rec.Code != http.StatusBadRequest {
		t.Errorf("a body that is not JSON: %d %s", rec.Code, rec.Body)
	}
	if rec := post("/api/v1/approve", `{"revision":"abc"}`, apiToken); rec.Code != http.StatusBadRequest {
		t.Errorf("no server: %d %s", rec.Code, rec.Body)
	}
	if rec := post("/api/v1/approve", `{"server":"nochange"}`, apiToken); rec.Code != http.StatusConflict || !strings.Contains(rec.Body.String(), "nochange has no change") {
		t.Errorf("a refused decision: %d %s", rec.Code, rec.Body)
	}
	if rec := post("/api/v1/approve", `{"server":"search","revision":"abc","note":"CHG-1"}`, apiToken); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"by":"api (`) {
		t.Errorf("an approval: %d %s", rec.Code, rec.Body)
	}
	if rec := post("/api/v1/reject", `{"server":"search","by":"bob","reason":"not yet"}`, apiToken); rec.Code != http.StatusOK {
		t.Errorf("a rejection: %d %s", rec.Code, rec.Body)
	}
	if len(b.got) != 2 || b.got[0].Reject || b.got[0].Note != "CHG-1" || b.got[0].Revision != "abc" ||
		!b.got[1].Reject || b.got[1].Note != "not yet" || b.got[1].By != "bob" {
		t.Errorf("decisions passed on: %+v", b.got)
	}
	if rec := post("/api/v1/approve", `{"server":"search"}`, apiToken); rec.Code != http.StatusOK {
		t.Fatal(rec.Code)
	}
	req := httptest.NewRequest(http.MethodGet, "/api/v1/approve", nil)
	req.Header.Set("Authorization", "Bearer "+apiToken)
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, req)
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET /api/v1/approve: %d", rec.Code)
	}
	metrics := httptest.NewRecorder()
	srv.ServeHTTP(metrics, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	for _, want := range []string{`tend_approval_decisions_total{decision="approved",server="search"} 2`, `tend_approval_decisions_total{decision="rejected",server="search"} 1`} {
		if !strings.Contains(metrics.Body.String(), want) {
			t.Errorf("metrics lack %s", want)
		}
	}

	// A backend that does not record approvals: 404.
	plain := newServer(allSecrets(), &fakeBackend{}, nil, time.Now)
	r2 := httptest.NewRequest(http.MethodPost, "/api/v1/approve", strings.NewReader(`{"server":"search"}`))
	r2.Header.Set("Authorization", "Bearer "+apiToken)
	rec2 := httptest.NewRecorder()
	plain.ServeHTTP(rec2, r2)
	if rec2.Code != http.StatusNotFound {
		t.Errorf("approve on a backend without approvals: %d", rec2.Code)
	}
}
