package verify

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tendhq/tend/spec"
)

func TestHTTPPass(t *testing.T) {
	t.Parallel()
	got := make(chan string, 1)
	tg := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- fmt.Sprintf("%s %s %s", r.Method, r.URL.Path, r.UserAgent())
		fmt.Fprint(w, "ok")
	}))
	wantPass(t, probe(t, httpCheck("health", &spec.HTTPCheck{Path: "/healthz"}), tg))
	if req := <-got; req != "GET /healthz tend-verify" {
		t.Errorf("request: %s", req)
	}
}

func TestHTTPStatusList(t *testing.T) {
	t.Parallel()
	tg := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	wantPass(t, probe(t, httpCheck("health", &spec.HTTPCheck{Status: []int{200, 204}}), tg))
	msg := wantFail(t, probe(t, httpCheck("health", &spec.HTTPCheck{Status: []int{200, 201}}), tg))
	if !strings.Contains(msg, "status 204, want one of 200, 201") || !strings.Contains(msg, "empty body") {
		t.Errorf("message: %s", msg)
	}
}

func TestHTTPWrongStatus(t *testing.T) {
	t.Parallel()
	tg := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprint(w, "database unreachable")
	}))
	msg := wantFail(t, probe(t, httpCheck("health", &spec.HTTPCheck{}), tg))
	want := fmt.Sprintf("GET http://127.0.0.1:%d/health: status 503, want 200, body \"database unreachable\"", tg.Ports["web"])
	if msg != want {
		t.Errorf("message:\n got %s\nwant %s", msg, want)
	}
}

func TestHTTPLongBodyIsCut(t *testing.T) {
	t.Parallel()
	tg := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(500)
		fmt.Fprint(w, strings.Repeat("a", 199)+"é"+strings.Repeat("b", 5000))
	}))
	msg := wantFail(t, probe(t, httpCheck("health", &spec.HTTPCheck{}), tg))
	if strings.Contains(msg, "é") || strings.Contains(msg, "bb") || !strings.Contains(msg, strings.Repeat("a", 199)+"…\"") {
		t.Errorf("the body is not cut to 200 bytes at a character boundary: %s", msg)
	}
}

func TestHTTPBodyContains(t *testing.T) {
	t.Parallel()
	tg := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"status":"starting"}`)
	}))
	msg := wantFail(t, probe(t, httpCheck("health", &spec.HTTPCheck{BodyContains: `"ready"`}), tg))
	if !strings.Contains(msg, `status 200, body does not contain "\"ready\""`) || !strings.Contains(msg, `starting`) {
		t.Errorf("message: %s", msg)
	}
	wantPass(t, probe(t, httpCheck("health", &spec.HTTPCheck{BodyContains: `starting`}), tg))
}

func TestHTTPBodyOnlyFirstMiB(t *testing.T) {
	t.Parallel()
	tg := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(strings.Repeat(".", 1<<20)))
		w.Write([]byte("MARKER"))
	}))
	wantFail(t, probe(t, httpCheck("health", &spec.HTTPCheck{BodyContains: "MARKER"}), tg))
}

func TestHTTPBodyRegex(t *testing.T) {
	t.Parallel()
	tg := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "build v42 ok\n")
	}))
	wantPass(t, probe(t, httpCheck("health", &spec.HTTPCheck{BodyRegex: `v\d+ ok`}), tg))
	msg := wantFail(t, probe(t, httpCheck("health", &spec.HTTPCheck{BodyRegex: `^v\d+ ready$`}), tg))
	if !strings.Contains(msg, `body does not match /^v\d+ ready$/`) || !strings.Contains(msg, `build v42 ok`) {
		t.Errorf("message: %s", msg)
	}
	if _, err := NewProber(httpCheck("bad", &spec.HTTPCheck{BodyRegex: `(`}), nil); err == nil {
		t.Error("NewProber accepted an invalid body_regex")
	}
}

func TestHTTPHeaderSentAndHidden(t *testing.T) {
	t.Parallel()
	const secret = "Bearer s3cret-t0ken"
	tg := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != secret || r.Header.Get("X-Env") != "prod" {
			// Echo what came, as a careless server might.
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprintf(w, "bad credentials %q for env %q", r.Header.Get("Authorization"), r.Header.Get("X-Env"))
			return
		}
		fmt.Fprint(w, "ok")
	}))
	good := httpCheck("health", &spec.HTTPCheck{Headers: map[string]spec.Value{
		"Authorization": spec.Sensitive(secret),
		"X-Env":         spec.Plain("prod"),
	}})
	wantPass(t, probe(t, good, tg))

	const wrong = "Bearer wr0ng-t0ken"
	bad := httpCheck("health", &spec.HTTPCheck{Headers: map[string]spec.Value{
		"Authorization": spec.Sensitive(wrong),
		"X-Env":         spec.Plain("staging"),
	}})
	msg := wantFail(t, probe(t, bad, tg))
	if strings.Contains(msg, "wr0ng") || strings.Contains(msg, "staging") {
		t.Errorf("a header value leaked into the message: %s", msg)
	}
	if !strings.Contains(msg, "status 401, want 200") || !strings.Contains(msg, spec.Redacted) {
		t.Errorf("message: %s", msg)
	}
}

func TestHTTPHostHeader(t *testing.T) {
	t.Parallel()
	tg := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Host != "api.example.com" {
			w.WriteHeader(http.StatusMisdirectedRequest)
		}
	}))
	wantPass(t, probe(t, httpCheck("health", &spec.HTTPCheck{Headers: map[string]spec.Value{"Host": spec.Plain("api.example.com")}}), tg))
}

func TestHTTPRedirectNotFollowed(t *testing.T) {
	t.Parallel()
	tg := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" {
			http.Redirect(w, r, "/login", http.StatusFound)
			return
		}
		fmt.Fprint(w, "login page")
	}))
	msg := wantFail(t, probe(t, httpCheck("health", &spec.HTTPCheck{}), tg))
	if !strings.Contains(msg, "status 302, want 200 (redirect to /login)") {
		t.Errorf("message: %s", msg)
	}
}

func TestHTTPTimeout(t *testing.T) {
	t.Parallel()
	tg := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}))
	c := httpCheck("health", &spec.HTTPCheck{})
	c.Timeout = 50 * time.Millisecond
	began := time.Now()
	msg := wantFail(t, probe(t, c, tg))
	if took := time.Since(began); took > 2*time.Second {
		t.Errorf("the probe took %s, want about the 50ms timeout", took)
	}
	want := fmt.Sprintf("GET http://127.0.0.1:%d/health: no answer within the 50ms timeout", tg.Ports["web"])
	if msg != want {
		t.Errorf("message:\n got %s\nwant %s", msg, want)
	}
}

func TestHTTPRefusedAndUnknownPort(t *testing.T) {
	t.Parallel()
	tg := Target{Replica: 2, Host: "127.0.0.1", Ports: map[string]int{"web": freePort(t)}}
	msg := wantFail(t, probe(t, httpCheck("health", &spec.HTTPCheck{}), tg))
	if !strings.Contains(msg, "refused") || strings.Count(msg, "http://") != 1 {
		t.Errorf("message: %s", msg)
	}
	msg = wantFail(t, probe(t, httpCheck("health", &spec.HTTPCheck{Port: "admin"}), tg))
	if msg != `replica 2 has no port "admin" (it has "web")` {
		t.Errorf("message: %s", msg)
	}
}

func TestHTTPCancelled(t *testing.T) {
	t.Parallel()
	tg := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	p, err := NewProber(httpCheck("health", &spec.HTTPCheck{}), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	// The caller's deadline, shorter than the check's timeout.
	msg := wantFail(t, p.Probe(ctx, tg))
	if !strings.HasSuffix(msg, "no answer before the deadline") {
		t.Errorf("message: %s", msg)
	}
}

func TestHTTPSAndMethods(t *testing.T) {
	t.Parallel()
	got := make(chan string, 1)
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Method
		fmt.Fprint(w, "ok")
	}))
	t.Cleanup(ts.Close)
	tg := targetOf(t, 0, ts.Listener.Addr())
	for _, m := range []string{"GET", "HEAD", "POST"} {
		// The test server's certificate is self-signed: like the kubelet,
		// a check does not verify it.
		wantPass(t, probe(t, httpCheck("health", &spec.HTTPCheck{Scheme: "https", Method: m}), tg))
		if g := <-got; g != m {
			t.Errorf("sent %s, want %s", g, m)
		}
	}
}
