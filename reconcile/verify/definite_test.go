package verify

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tendhq/tend/spec"
)

// TestDefinite sorts failures into answers that waiting will not change and
// the others, with a real server for each.
func TestDefinite(t *testing.T) {
	t.Parallel()
	status := func(code int, body string) Target {
		return serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(code)
			fmt.Fprint(w, body)
		}))
	}
	mcpSrv := mcpServer(t, nil)
	dead := Target{Host: "127.0.0.1", Ports: map[string]int{"web": freePort(t)}}
	for _, tc := range []struct {
		name     string
		check    *spec.Check
		target   Target
		version  string
		definite bool
	}{
		{"http 404", httpCheck("h", &spec.HTTPCheck{}), status(404, "no such page"), "", true},
		{"http 301", httpCheck("h", &spec.HTTPCheck{}), status(301, ""), "", true},
		{"http 503 while starting", httpCheck("h", &spec.HTTPCheck{}), status(503, "starting"), "", false},
		{"http 502 from a proxy", httpCheck("h", &spec.HTTPCheck{}), status(502, ""), "", false},
		{"http 429", httpCheck("h", &spec.HTTPCheck{}), status(429, ""), "", false},
		{"http body without the text", httpCheck("h", &spec.HTTPCheck{BodyContains: "ok"}), status(200, "degraded"), "", true},
		{"http body not matching", httpCheck("h", &spec.HTTPCheck{BodyRegex: `^v2\.`}), status(200, "v1.9"), "", true},
		{"http connection refused", httpCheck("h", &spec.HTTPCheck{}), dead, "", false},
		{"tcp connection refused", tcpCheck("web"), dead, "", false},
		{"exec exit code", &spec.Check{Name: "e", Kind: spec.CheckExec, Exec: &spec.ExecCheck{Command: []spec.Value{spec.Plain("false")}}}, mcpSrv, "", false},
		{"mcp missing tool", mcpCheck(&spec.MCPCheck{Tools: []string{"fetch"}}), mcpSrv, "", true},
		{"mcp missing resource", mcpCheck(&spec.MCPCheck{Resources: []string{"config://db"}}), mcpSrv, "", true},
		{"mcp missing prompt", mcpCheck(&spec.MCPCheck{Prompts: []string{"translate"}}), mcpSrv, "", true},
		{"mcp server version", mcpCheck(&spec.MCPCheck{CheckVersion: true}), mcpSrv, "2.0.0", true},
		{"mcp call without the expected text", mcpCheck(&spec.MCPCheck{Call: &spec.MCPCall{Tool: "search", Arguments: spec.Plain(`{"q":"x"}`), Expect: "pong"}}), mcpSrv, "", true},
		{"mcp tool reports an error", mcpCheck(&spec.MCPCheck{Call: &spec.MCPCall{Tool: "broken", Arguments: spec.Plain(`{}`)}}), mcpSrv, "", false},
		{"mcp not an endpoint", mcpCheck(&spec.MCPCheck{}), status(404, ""), "", false},
		{"mcp connection refused", mcpCheck(&spec.MCPCheck{}), dead, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := probe(t, tc.check, tc.target, WithVersion(tc.version))
			if err == nil {
				t.Fatal("the probe passed, want a failure")
			}
			if got := Definite(err); got != tc.definite {
				t.Errorf("Definite(%q) = %v, want %v", err, got, tc.definite)
			}
		})
	}
}

// TestVerifyFailAfterDefiniteAnswer: a server that answers without a
// declared tool fails verification after FailAfter probes, not at the
// deadline, and the reason says what it answered and how often.
func TestVerifyFailAfterDefiniteAnswer(t *testing.T) {
	t.Parallel()
	tg := mcpServer(t, nil)
	c := mcpCheck(&spec.MCPCheck{Tools: []string{"search_notes"}})
	c.Name = "tools"
	c.Interval, c.Timeout = 20*time.Millisecond, 500*time.Millisecond
	var rec recorder
	out := Verify(context.Background(), Options{
		Checks: []*spec.Check{c}, Targets: []Target{tg},
		VerifyFor: time.Second, Deadline: time.Minute, FailAfter: 3, Progress: rec.add,
	})
	if out.Verified {
		t.Fatal("verified a server without the declared tool")
	}
	if out.Duration > 10*time.Second {
		t.Errorf("failed after %s, want far less than the 1m deadline", out.Duration)
	}
	want := fmt.Sprintf(`check "tools" on replica 0 failed the same way 3 times in a row; not waiting for the 1m deadline: mcp http://127.0.0.1:%d/mcp: missing tool "search_notes"; the server offers `, tg.Ports["web"])
	if !strings.HasPrefix(out.Reason, want) {
		t.Errorf("reason:\n got %s\nwant %s...", out.Reason, want)
	}
	if n := len(rec.results()); n != 3 {
		t.Errorf("%d probes, want 3", n)
	}
	if r := out.Results[0]; r.OK || !r.Definite {
		t.Errorf("last result: %+v, want a definite failure", r)
	}
}

// TestVerifyFailAfterWaitsForUndecidedFailures: refusals and 503s may end
// by waiting, so they fail only at the deadline, and with a verify_for of 0
// the reason does not speak of passing "for 0s".
func TestVerifyFailAfterWaitsForUndecidedFailures(t *testing.T) {
	t.Parallel()
	down := &flaky{}
	down.status.Store(http.StatusServiceUnavailable)
	tg := serve(t, down)
	began := time.Now()
	out := Verify(context.Background(), Options{
		Checks: []*spec.Check{quickCheck("health", 1)}, Targets: []Target{tg},
		Deadline: 300 * time.Millisecond, FailAfter: 3,
	})
	if out.Verified {
		t.Fatal("verified a replica answering 503")
	}
	if took := time.Since(began); took < 300*time.Millisecond {
		t.Errorf("gave up after %s, before the 300ms deadline", took)
	}
	if n := down.calls.Load(); n < 5 {
		t.Errorf("%d probes, want the deadline's worth (every 20ms)", n)
	}
	want := fmt.Sprintf(`checks did not pass within the 300ms deadline: check "health" on replica 0: GET http://127.0.0.1:%d/health: status 503, want 200, body "unavailable"`, tg.Ports["web"])
	if out.Reason != want {
		t.Errorf("reason:\n got %s\nwant %s", out.Reason, want)
	}
}

// TestVerifyFailAfterNeedsTheSameAnswer: definite answers that differ
// (a body that changes every time) are not the same answer repeated.
func TestVerifyFailAfterNeedsTheSameAnswer(t *testing.T) {
	t.Parallel()
	var n atomic.Int32
	tg := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "warming up, step %d", n.Add(1))
	}))
	c := quickCheck("health", 1)
	c.HTTP.BodyContains = "ready"
	out := Verify(context.Background(), Options{
		Checks: []*spec.Check{c}, Targets: []Target{tg}, Deadline: 250 * time.Millisecond, FailAfter: 2,
	})
	if out.Verified || !strings.HasPrefix(out.Reason, "checks did not pass within the 250ms deadline: ") {
		t.Errorf("outcome: %+v", out)
	}
	if n.Load() < 5 {
		t.Errorf("%d probes, want probing until the deadline", n.Load())
	}
}

// TestVerifyFailAfterOff: FailAfter 0 waits for the deadline, whatever
// the answer.
func TestVerifyFailAfterOff(t *testing.T) {
	t.Parallel()
	tg := mcpServer(t, nil)
	c := mcpCheck(&spec.MCPCheck{Tools: []string{"search_notes"}})
	c.Interval, c.Timeout = 20*time.Millisecond, 500*time.Millisecond
	began := time.Now()
	out := Verify(context.Background(), Options{Checks: []*spec.Check{c}, Targets: []Target{tg}, Deadline: 200 * time.Millisecond})
	if out.Verified || !strings.HasPrefix(out.Reason, "checks did not pass within the 200ms deadline: ") {
		t.Errorf("outcome: %+v", out)
	}
	if took := time.Since(began); took < 200*time.Millisecond {
		t.Errorf("gave up after %s, before the deadline", took)
	}
}

// TestVerifyFailAfterKeepsFailureThreshold: a passing check that starts
// giving a definite answer still has its failure_threshold of failures
// before it counts as failing; only then does FailAfter end verification.
func TestVerifyFailAfterKeepsFailureThreshold(t *testing.T) {
	t.Parallel()
	f := &flaky{}
	tg := serve(t, f)
	c := quickCheck("health", 5)
	var rec recorder
	time.AfterFunc(100*time.Millisecond, func() { f.status.Store(http.StatusNotFound) })
	out := Verify(context.Background(), Options{
		Checks: []*spec.Check{c}, Targets: []Target{tg},
		VerifyFor: time.Minute, Deadline: 2 * time.Minute, FailAfter: 2, Progress: rec.add,
	})
	if out.Verified || !strings.HasPrefix(out.Reason, `check "health" on replica 0 failed the same way 5 times in a row; not waiting for the 2m deadline: GET `) {
		t.Fatalf("outcome: %+v", out)
	}
	res := rec.results()
	if len(res) < 6 || !res[0].OK {
		t.Fatalf("results: %+v", res)
	}
	for _, r := range res[len(res)-5:] {
		if r.OK || !r.Definite || !strings.Contains(r.Message, "status 404, want 200") {
			t.Errorf("one of the last five results: %+v", r)
		}
	}
}
