package verify

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tendhq/tend/spec"
)

// flaky is a health endpoint whose answer the test sets.
type flaky struct {
	status atomic.Int32
	calls  atomic.Int32
	// failCall, if set, makes only that call (1-based) fail.
	failCall int32
}

func (f *flaky) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := f.calls.Add(1)
	if n == f.failCall {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprint(w, "hiccup")
		return
	}
	code := int(f.status.Load())
	if code == 0 {
		code = http.StatusOK
	}
	w.WriteHeader(code)
	if code != http.StatusOK {
		fmt.Fprint(w, "unavailable")
	}
}

func quickCheck(name string, failureThreshold int) *spec.Check {
	c := httpCheck(name, &spec.HTTPCheck{})
	c.Interval = 20 * time.Millisecond
	c.Timeout = 500 * time.Millisecond
	c.FailureThreshold = failureThreshold
	return c
}

// recorder collects Progress results safely.
type recorder struct {
	mu  sync.Mutex
	all []Result
}

func (r *recorder) add(res Result) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.all = append(r.all, res)
}

func (r *recorder) results() []Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Result(nil), r.all...)
}

func TestVerifyPassesAfterVerifyFor(t *testing.T) {
	t.Parallel()
	t0 := serve(t, &flaky{})
	t1 := serve(t, &flaky{})
	t1.Replica = 1
	var rec recorder
	o := Options{
		Checks:    []*spec.Check{quickCheck("health", 1), tcpCheck("web")},
		Targets:   []Target{t0, t1},
		VerifyFor: 200 * time.Millisecond,
		Deadline:  5 * time.Second,
		Progress:  rec.add,
	}
	out := Verify(context.Background(), o)
	if !out.Verified {
		t.Fatalf("not verified: %s", out.Reason)
	}
	if out.Duration < 200*time.Millisecond || out.Duration > 3*time.Second {
		t.Errorf("verified after %s, want a little over 200ms", out.Duration)
	}
	if len(out.Results) != 4 {
		t.Fatalf("%d results, want one per (check, replica): %+v", len(out.Results), out.Results)
	}
	want := []string{"health/0", "health/1", "port/0", "port/1"}
	for i, r := range out.Results {
		if got := fmt.Sprintf("%s/%d", r.Check, r.Replica); got != want[i] || !r.OK || r.At.IsZero() {
			t.Errorf("result %d: %+v, want %s passing", i, r, want[i])
		}
	}
	if n := len(rec.results()); n < 4*5 {
		t.Errorf("Progress saw %d results, want one per probe (about 10 per pair)", n)
	}
}

func TestVerifyForZero(t *testing.T) {
	t.Parallel()
	tg := serve(t, &flaky{})
	out := Verify(context.Background(), Options{
		Checks: []*spec.Check{quickCheck("health", 1)}, Targets: []Target{tg}, Deadline: 5 * time.Second,
	})
	if !out.Verified || out.Duration > time.Second {
		t.Errorf("outcome %+v, want verified at the first pass", out)
	}
}

func TestVerifyFlapResetsClock(t *testing.T) {
	t.Parallel()
	f := &flaky{failCall: 8}
	tg := serve(t, f)
	var rec recorder
	const verifyFor = 250 * time.Millisecond
	out := Verify(context.Background(), Options{
		Checks: []*spec.Check{quickCheck("health", 1)}, Targets: []Target{tg},
		VerifyFor: verifyFor, Deadline: 5 * time.Second, Progress: rec.add,
	})
	if !out.Verified {
		t.Fatalf("not verified: %s", out.Reason)
	}
	end := time.Now()
	var failedAt time.Time
	for _, r := range rec.results() {
		if !r.OK {
			failedAt = r.At
			if !strings.Contains(r.Message, "status 503, want 200") {
				t.Errorf("failure message: %s", r.Message)
			}
		}
	}
	if failedAt.IsZero() {
		t.Fatal("the check never failed")
	}
	// With failure_threshold 1 the failure restarted the clock: the
	// whole verify_for lies after it.
	if end.Sub(failedAt) < verifyFor {
		t.Errorf("verified %s after the failure, want at least verify_for (%s)", end.Sub(failedAt), verifyFor)
	}
}

func TestVerifyFailureUnderThresholdKeepsClock(t *testing.T) {
	t.Parallel()
	f := &flaky{failCall: 8}
	tg := serve(t, f)
	var rec recorder
	const verifyFor = 400 * time.Millisecond
	out := Verify(context.Background(), Options{
		Checks: []*spec.Check{quickCheck("health", 3)}, Targets: []Target{tg},
		VerifyFor: verifyFor, Deadline: 5 * time.Second, Progress: rec.add,
	})
	end := time.Now()
	if !out.Verified {
		t.Fatalf("not verified: %s", out.Reason)
	}
	var failedAt, firstPass time.Time
	for _, r := range rec.results() {
		if r.OK && firstPass.IsZero() {
			firstPass = r.At
		}
		if !r.OK {
			failedAt = r.At
		}
	}
	if failedAt.IsZero() {
		t.Fatal("the check never failed")
	}
	// A single failure under failure_threshold 3 does not restart the
	// clock: verification ends verify_for after the first pass, which is
	// less than verify_for after the failure.
	if end.Sub(failedAt) >= verifyFor {
		t.Errorf("verified %s after the single failure, want less than verify_for (%s): the clock was reset", end.Sub(failedAt), verifyFor)
	}
	if end.Sub(firstPass) < verifyFor {
		t.Errorf("verified %s after the first pass, want at least %s", end.Sub(firstPass), verifyFor)
	}
}

func TestVerifySuccessThreshold(t *testing.T) {
	t.Parallel()
	tg := serve(t, &flaky{})
	c := quickCheck("health", 1)
	c.SuccessThreshold = 4
	var rec recorder
	out := Verify(context.Background(), Options{
		Checks: []*spec.Check{c}, Targets: []Target{tg}, Deadline: 5 * time.Second, Progress: rec.add,
	})
	if !out.Verified {
		t.Fatalf("not verified: %s", out.Reason)
	}
	if n := len(rec.results()); n != 4 {
		t.Errorf("verified after %d passes, want success_threshold 4", n)
	}
}

func TestVerifyDeadline(t *testing.T) {
	t.Parallel()
	down := &flaky{}
	down.status.Store(http.StatusServiceUnavailable)
	bad := serve(t, down)
	good := serve(t, &flaky{})
	good.Replica = 1
	began := time.Now()
	out := Verify(context.Background(), Options{
		Checks: []*spec.Check{quickCheck("health", 1)}, Targets: []Target{bad, good},
		VerifyFor: time.Second, Deadline: 200 * time.Millisecond,
	})
	if out.Verified {
		t.Fatal("verified against a failing replica")
	}
	if took := time.Since(began); took < 200*time.Millisecond || took > 2*time.Second {
		t.Errorf("gave up after %s, want the 200ms deadline", took)
	}
	want := fmt.Sprintf(`checks did not pass for 1s within the 200ms deadline: check "health" on replica 0: GET http://127.0.0.1:%d/health: status 503, want 200, body "unavailable"`, bad.Ports["web"])
	if out.Reason != want {
		t.Errorf("reason:\n got %s\nwant %s", out.Reason, want)
	}
	if len(out.Results) != 2 || out.Results[0].OK || !out.Results[1].OK {
		t.Errorf("results: %+v", out.Results)
	}
}

func TestVerifyDeadlineWhileStillCounting(t *testing.T) {
	t.Parallel()
	tg := serve(t, &flaky{})
	out := Verify(context.Background(), Options{
		Checks: []*spec.Check{quickCheck("health", 1)}, Targets: []Target{tg},
		VerifyFor: 5 * time.Minute, Deadline: 150 * time.Millisecond,
	})
	if out.Verified || !strings.HasPrefix(out.Reason, "checks did not pass for 5m within the 150ms deadline: all passing for only ") {
		t.Errorf("outcome: %+v", out)
	}
}

func TestVerifyDeadlineOrdersReasons(t *testing.T) {
	t.Parallel()
	down := &flaky{}
	down.status.Store(http.StatusInternalServerError)
	tg := serve(t, down)
	late := quickCheck("late", 1)
	late.InitialDelay = time.Minute
	out := Verify(context.Background(), Options{
		Checks: []*spec.Check{late, quickCheck("health", 1)}, Targets: []Target{tg},
		VerifyFor: time.Second, Deadline: 150 * time.Millisecond,
	})
	// The failing check comes first, though declared second; the one not
	// probed yet says why.
	parts := strings.SplitN(out.Reason, "; ", 2)
	if len(parts) != 2 || !strings.Contains(parts[0], `check "health" on replica 0: GET`) ||
		parts[1] != `check "late" on replica 0: not probed yet (initial_delay 1m)` {
		t.Errorf("reason: %s", out.Reason)
	}
	if out.Results[0].Message != "not probed yet" || out.Results[0].OK {
		t.Errorf("result of the unprobed pair: %+v", out.Results[0])
	}
}

func TestVerifyAliveFailsFast(t *testing.T) {
	t.Parallel()
	tg := serve(t, &flaky{})
	began := time.Now()
	var calls atomic.Int32
	out := Verify(context.Background(), Options{
		Checks: []*spec.Check{quickCheck("health", 1)}, Targets: []Target{tg},
		VerifyFor: 30 * time.Second, Deadline: time.Minute,
		Alive: func(ctx context.Context) error {
			if calls.Add(1) > 3 {
				return errors.New("replica 0 exited with code 1")
			}
			return nil
		},
	})
	if took := time.Since(began); took > 2*time.Second {
		t.Errorf("took %s to notice the exit, want far less than the deadline", took)
	}
	if out.Verified || out.Reason != "replica 0 exited with code 1" {
		t.Errorf("outcome: %+v", out)
	}
}

func TestVerifyAliveFailsBeforeProbing(t *testing.T) {
	t.Parallel()
	out := Verify(context.Background(), Options{
		Checks: []*spec.Check{quickCheck("health", 1)}, Targets: []Target{{Host: "127.0.0.1", Ports: map[string]int{"web": freePort(t)}}},
		VerifyFor: time.Second, Deadline: time.Minute,
		Alive: func(context.Context) error { return errors.New("replica 0 is crash-looping (3 restarts in 1m)") },
	})
	if out.Verified || out.Reason != "replica 0 is crash-looping (3 restarts in 1m)" || out.Duration > time.Second {
		t.Errorf("outcome: %+v", out)
	}
}

func TestVerifyNoChecks(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	out := Verify(context.Background(), Options{
		Targets: []Target{{Replica: 0}}, VerifyFor: 100 * time.Millisecond, Deadline: 5 * time.Second,
		Alive: func(context.Context) error { calls.Add(1); return nil },
	})
	if !out.Verified || out.Duration < 100*time.Millisecond || len(out.Results) != 0 {
		t.Errorf("outcome: %+v", out)
	}
	if n := calls.Load(); n < 3 {
		t.Errorf("Alive asked %d times in verify_for, want it watched throughout", n)
	}
}

func TestVerifyNoChecksProcessDies(t *testing.T) {
	t.Parallel()
	began := time.Now()
	out := Verify(context.Background(), Options{
		VerifyFor: time.Second, Deadline: time.Minute, // Alive every 100ms
		Alive: func(context.Context) error {
			if time.Since(began) > 50*time.Millisecond {
				return errors.New("replica 0 exited with code 137")
			}
			return nil
		},
	})
	if out.Verified || out.Reason != "replica 0 exited with code 137" || out.Duration > 500*time.Millisecond {
		t.Errorf("outcome: %+v", out)
	}
}

func TestVerifyNoChecksDeadlineFirst(t *testing.T) {
	t.Parallel()
	out := Verify(context.Background(), Options{VerifyFor: time.Minute, Deadline: 50 * time.Millisecond})
	if out.Verified || !strings.HasPrefix(out.Reason, "the server was watched for only ") || !strings.HasSuffix(out.Reason, " of the 1m verify_for when the 50ms deadline passed") {
		t.Errorf("outcome: %+v", out)
	}
}

func TestVerifyNoChecksNoAlive(t *testing.T) {
	t.Parallel()
	out := Verify(context.Background(), Options{VerifyFor: 30 * time.Millisecond})
	if !out.Verified {
		t.Errorf("outcome: %+v", out)
	}
}

func TestVerifyCancelled(t *testing.T) {
	t.Parallel()
	down := &flaky{}
	down.status.Store(http.StatusServiceUnavailable)
	tg := serve(t, down)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	began := time.Now()
	out := Verify(ctx, Options{
		Checks: []*spec.Check{quickCheck("health", 1)}, Targets: []Target{tg},
		VerifyFor: time.Second, Deadline: time.Minute,
	})
	if out.Verified || out.Reason != "cancelled" || time.Since(began) > 2*time.Second {
		t.Errorf("outcome: %+v", out)
	}

	ctx, cancel = context.WithCancel(context.Background())
	cancel()
	if out := Verify(ctx, Options{VerifyFor: time.Second}); out.Verified || out.Reason != "cancelled" {
		t.Errorf("outcome with a cancelled context: %+v", out)
	}
}

func TestVerifyCancelStopsHangingProbes(t *testing.T) {
	t.Parallel()
	tg := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	c := quickCheck("health", 1)
	c.Interval, c.Timeout = time.Minute, time.Minute
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	began := time.Now()
	out := Verify(ctx, Options{Checks: []*spec.Check{c}, Targets: []Target{tg}, VerifyFor: time.Second})
	if out.Reason != "cancelled" || time.Since(began) > 2*time.Second {
		t.Errorf("outcome after %s: %+v", time.Since(began), out)
	}
}

func TestVerifyNoProgressAfterReturn(t *testing.T) {
	t.Parallel()
	tg := serve(t, &flaky{})
	var done atomic.Bool
	out := Verify(context.Background(), Options{
		Checks: []*spec.Check{quickCheck("a", 1), quickCheck("b", 1), quickCheck("c", 1)}, Targets: []Target{tg},
		VerifyFor: 50 * time.Millisecond, Deadline: 5 * time.Second,
		Progress: func(Result) {
			if done.Load() {
				t.Error("Progress called after Verify returned")
			}
		},
	})
	done.Store(true)
	if !out.Verified {
		t.Fatalf("not verified: %s", out.Reason)
	}
	time.Sleep(60 * time.Millisecond) // a probe still running would report now
}

func TestVerifyCheckItCannotRun(t *testing.T) {
	t.Parallel()
	c := &spec.Check{Name: "local", Kind: spec.CheckMCP, MCP: &spec.MCPCheck{Transport: "stdio"}}
	out := Verify(context.Background(), Options{Checks: []*spec.Check{c}, Targets: []Target{{}}, VerifyFor: time.Second})
	if out.Verified || !strings.Contains(out.Reason, `check "local": `) || !strings.Contains(out.Reason, "needs a provider that runs the server's command") {
		t.Errorf("outcome: %+v", out)
	}
}

func TestVerifyPassesVersionToProbers(t *testing.T) {
	t.Parallel()
	tg := mcpServer(t, nil)
	c := mcpCheck(&spec.MCPCheck{CheckVersion: true})
	c.Interval, c.Timeout = 20*time.Millisecond, 500*time.Millisecond
	out := Verify(context.Background(), Options{
		Checks: []*spec.Check{c}, Targets: []Target{tg}, Version: "2.0.0", Deadline: 150 * time.Millisecond,
	})
	if out.Verified || !strings.Contains(out.Reason, `server version "1.4.2", want "2.0.0"`) {
		t.Errorf("outcome: %+v", out)
	}
	out = Verify(context.Background(), Options{
		Checks: []*spec.Check{c}, Targets: []Target{tg}, Version: "1.4.2", VerifyFor: 60 * time.Millisecond, Deadline: 5 * time.Second,
	})
	if !out.Verified {
		t.Errorf("outcome: %+v", out)
	}
}

func TestVerifyFakeNow(t *testing.T) {
	t.Parallel()
	tg := serve(t, &flaky{})
	base := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	var mu sync.Mutex
	ticks := 0
	now := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		ticks++
		return base.Add(time.Duration(ticks) * time.Second)
	}
	out := Verify(context.Background(), Options{
		Checks: []*spec.Check{quickCheck("health", 1)}, Targets: []Target{tg}, Deadline: 5 * time.Second, Now: now,
	})
	if !out.Verified || !out.Results[0].At.After(base) || out.Duration < time.Second {
		t.Errorf("outcome: %+v", out)
	}
}

func TestShortDuration(t *testing.T) {
	t.Parallel()
	for d, want := range map[time.Duration]string{
		5 * time.Minute:         "5m",
		time.Hour:               "1h",
		90 * time.Second:        "1m30s",
		30 * time.Second:        "30s",
		200 * time.Millisecond:  "200ms",
		time.Hour + time.Second: "1h0m1s",
	} {
		if got := shortDuration(d); got != want {
			t.Errorf("shortDuration(%s) = %s, want %s", d, got, want)
		}
	}
}
