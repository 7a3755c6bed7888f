package api

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func TestMetricsExposition(t *testing.T) {
	h := newHarness(t, allSecrets())
	m := h.m
	m.ObservePass(ResultApplied, 3*time.Second)
	m.ObservePass(ResultNoChange, 200*time.Millisecond)
	m.ObserveFetch(1500*time.Millisecond, nil)
	m.ObserveFetch(30*time.Second, errors.New("timeout"))
	m.SetServer("web-1", true, true, false, false)
	m.SetServer("db-1", true, false, true, true)
	m.IncRollback("db-1")
	m.ObserveApply("db-1", 42*time.Second)
	m.SetLastSuccess(time.Unix(1735787045, 500_000_000))
	m.IncWebhook("github", WebhookTriggered)

	out := h.scrape(t)
	for _, want := range []string{
		"# TYPE tend_reconcile_total counter",
		`tend_reconcile_total{result="applied"} 1`,
		`tend_reconcile_total{result="no-change"} 1`,
		`tend_reconcile_total{result="failed"} 0`, // initialised at zero
		`tend_reconcile_total{result="stalled"} 0`,
		`tend_reconcile_total{result="fetch-error"} 0`,
		"# TYPE tend_reconcile_duration_seconds histogram",
		`tend_reconcile_duration_seconds_count{result="applied"} 1`,
		`tend_reconcile_duration_seconds_sum{result="applied"} 3`,
		"# TYPE tend_git_fetch_duration_seconds histogram",
		"tend_git_fetch_duration_seconds_count 2",
		"tend_git_fetch_errors_total 1",
		`tend_server_up{server="web-1"} 1`,
		`tend_server_healthy{server="web-1"} 1`,
		`tend_server_drifted{server="web-1"} 0`,
		`tend_server_held{server="web-1"} 0`,
		`tend_server_healthy{server="db-1"} 0`,
		`tend_server_drifted{server="db-1"} 1`,
		`tend_server_held{server="db-1"} 1`,
		`tend_rollbacks_total{server="db-1"} 1`,
		"# TYPE tend_apply_duration_seconds histogram",
		`tend_apply_duration_seconds_count{server="db-1"} 1`,
		"tend_last_successful_sync_timestamp_seconds 1.7357870455e+09",
		`tend_webhooks_total{endpoint="github",result="triggered"} 1`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("exposition lacks %q", want)
		}
	}

	// SetHeld moves only the held gauge.
	m.SetHeld("web-1", true)
	out = h.scrape(t)
	for _, want := range []string{`tend_server_held{server="web-1"} 1`, `tend_server_up{server="web-1"} 1`, `tend_server_healthy{server="web-1"} 1`} {
		if !strings.Contains(out, want) {
			t.Errorf("after SetHeld, the exposition lacks %q", want)
		}
	}

	m.ForgetServer("db-1")
	out = h.scrape(t)
	if strings.Contains(out, `server="db-1"`) {
		t.Errorf("db-1 series remain after ForgetServer:\n%s", grepLines(out, "db-1"))
	}
	if !strings.Contains(out, `tend_server_up{server="web-1"} 1`) {
		t.Error("ForgetServer deleted another server's series")
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func TestMetricsNotGlobal(t *testing.T) {
	// Two sets on two registries do not collide, and neither touches the
	// default registry.
	NewMetrics(prometheus.NewRegistry())
	NewMetrics(prometheus.NewRegistry())
	mfs, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), "tend_") {
			t.Errorf("%s registered globally", mf.GetName())
		}
	}
}

func TestMetricsNil(t *testing.T) {
	var m *Metrics
	m.ObservePass(ResultFailed, time.Second)
	m.ObserveFetch(time.Second, nil)
	m.SetServer("a", true, true, true, true)
	m.SetHeld("a", true)
	m.ForgetServer("a")
	m.IncRollback("a")
	m.ObserveApply("a", time.Second)
	m.SetLastSuccess(time.Now())
	m.IncWebhook("github", WebhookTriggered)
	m.SetScale("a", 1, 1, 1, nil)
	m.ObserveScale("a", true, "applied")

	b := &fakeBackend{}
	srv := NewServer(Config{GitHubSecret: ghSecret}, b, nil)
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	wantStatus(t, rec, http.StatusNotFound)
}

func TestMetricsNilRegistry(t *testing.T) {
	m := NewMetrics(nil)
	if m.Registry() == nil {
		t.Fatal("no registry")
	}
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if !strings.Contains(rec.Body.String(), "tend_reconcile_total") {
		t.Error("exposition lacks tend_reconcile_total")
	}
}

func TestScaleMetrics(t *testing.T) {
	h := newHarness(t, allSecrets())
	m := h.m
	m.SetScale("web", 3, 2, 2, map[int]map[string]float64{0: {"cpu": 91.5, "memory": 12}, 1: {"cpu": 88}})
	m.ObserveScale("web", true, "applied")
	m.ObserveScale("web", false, "held")
	out := h.scrape(t)
	for _, want := range []string{
		`tend_autoscale_desired_replicas{server="web"} 3`,
		`tend_autoscale_replicas{server="web"} 2`,
		`tend_autoscale_running_replicas{server="web"} 2`,
		`tend_replica_scaling_metric{metric="cpu",replica="0",server="web"} 91.5`,
		`tend_replica_scaling_metric{metric="memory",replica="0",server="web"} 12`,
		`tend_replica_scaling_metric{metric="cpu",replica="1",server="web"} 88`,
		`tend_autoscale_decisions_total{direction="up",outcome="applied",server="web"} 1`,
		`tend_autoscale_decisions_total{direction="down",outcome="held",server="web"} 1`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("exposition lacks %q", want)
		}
	}
	// A replica that went away loses its series.
	m.SetScale("web", 1, 1, 1, map[int]map[string]float64{0: {"cpu": 10}})
	if out = h.scrape(t); strings.Contains(out, `replica="1"`) || !strings.Contains(out, `tend_replica_scaling_metric{metric="cpu",replica="0",server="web"} 10`) {
		t.Errorf("after a scale-down:\n%s", grepLines(out, "tend_replica_scaling_metric"))
	}
	m.ForgetServer("web")
	if out = h.scrape(t); strings.Contains(out, `tend_autoscale_replicas{server="web"}`) || strings.Contains(out, "tend_replica_scaling_metric{") {
		t.Errorf("series remain after ForgetServer:\n%s", grepLines(out, "web"))
	}
}

func TestUsageMetrics(t *testing.T) {
	h := newHarness(t, allSecrets())
	h.m.SetUsage(map[string][2]int64{"web": {250, 64 << 20}, "db": {10, 1 << 30}})
	out := h.scrape(t)
	for _, want := range []string{
		`tend_server_cpu_millicores{server="web"} 250`,
		`tend_server_memory_bytes{server="web"} 6.7108864e+07`,
		`tend_server_cpu_millicores{server="db"} 10`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("exposition lacks %q:\n%s", want, grepLines(out, "tend_server_"))
		}
	}
	// A server not in the next sample loses its series.
	h.m.SetUsage(map[string][2]int64{"web": {300, 1}})
	if out = h.scrape(t); strings.Contains(out, `server="db"} 10`) || !strings.Contains(out, `tend_server_cpu_millicores{server="web"} 300`) {
		t.Errorf("after a second sample:\n%s", grepLines(out, "tend_server_"))
	}
}
