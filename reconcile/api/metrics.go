package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Pass results, the values of the "result" label of tend_reconcile_total
// and tend_reconcile_duration_seconds. Their series are created at zero by
// NewMetrics so that rate() and alerts see them before the first pass.
const (
	ResultApplied    = "applied"
	ResultNoChange   = "no-change"
	ResultHeld       = "held"    // nothing to apply, but a change is held or kept (not pruned)
	ResultWaiting    = "waiting" // nothing to apply, but a change waits for a window, an approval or a promotion
	ResultFailed     = "failed"
	ResultStalled    = "stalled"
	ResultFetchError = "fetch-error"
)

// PassResults lists the pass results NewMetrics initialises.
var PassResults = []string{ResultApplied, ResultNoChange, ResultHeld, ResultWaiting, ResultFailed, ResultStalled, ResultFetchError}

// Webhook results, the values of the "result" label of tend_webhooks_total
// as the webhook handlers count them.
const (
	WebhookTriggered    = "triggered"    // valid push to the tracked ref: one Trigger
	WebhookIgnored      = "ignored"      // valid, but another ref, a deletion or another event
	WebhookPing         = "ping"         // GitHub's ping
	WebhookUnauthorized = "unauthorized" // bad or missing signature/token
	WebhookTooLarge     = "too-large"    // body over the limit
	WebhookBadRequest   = "bad-request"  // signed, but not a payload we can read
	WebhookRateLimited  = "rate-limited" // over the per-client limit
)

var (
	// Passes last from well under a second (nothing to do) to many minutes
	// (rolling a large fleet); applies on one server likewise.
	passBuckets = []float64{0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800}
	// A fetch is a git fetch or a directory read.
	fetchBuckets = []float64{0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120}
)

// Metrics holds tend's Prometheus metrics on one registry. Its methods are
// safe for concurrent use, and a nil *Metrics ignores every call, so a
// daemon without metrics may pass nil.
type Metrics struct {
	reg *prometheus.Registry

	passes        *prometheus.CounterVec
	passDuration  *prometheus.HistogramVec
	fetchDuration prometheus.Histogram
	fetchErrors   prometheus.Counter
	serverUp      *prometheus.GaugeVec
	serverHealthy *prometheus.GaugeVec
	serverDrifted *prometheus.GaugeVec
	serverHeld    *prometheus.GaugeVec
	rollbacks     *prometheus.CounterVec
	applyDuration *prometheus.HistogramVec
	lastSuccess   prometheus.Gauge
	webhooks      *prometheus.CounterVec

	backupLast     *prometheus.GaugeVec
	backupDuration *prometheus.GaugeVec
	backupSize     *prometheus.GaugeVec
	backupFailures *prometheus.CounterVec
	drillLast      *prometheus.GaugeVec
	drillFailures  *prometheus.CounterVec

	scaleDesired   *prometheus.GaugeVec
	scaleReplicas  *prometheus.GaugeVec
	scaleRunning   *prometheus.GaugeVec
	replicaUse     *prometheus.GaugeVec
	scaleDecisions *prometheus.CounterVec
	usageCPU       *prometheus.GaugeVec
	usageMemory    *prometheus.GaugeVec

	updateAvailable *prometheus.GaugeVec
	updateLastRun   prometheus.Gauge
	updateFailures  prometheus.Counter
	updateCommits   prometheus.Counter
	serverWaiting   *prometheus.GaugeVec
	decisions       *prometheus.CounterVec
}

// WaitReasons are the values of the "for" label of tend_server_waiting.
var WaitReasons = []string{"window", "approval", "promotion"}

// NewMetrics creates tend's metrics and registers them on reg (a new
// registry when reg is nil), never on the global one. It panics when a
// metric of the same name is already registered on reg, as MustRegister
// does: that is a programming error. Go runtime and process collectors are
// the caller's to add (collectors.NewGoCollector, NewProcessCollector).
func NewMetrics(reg *prometheus.Registry) *Metrics {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	serverGauge := func(name, help string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, []string{"server"})
	}
	m := &Metrics{
		reg: reg,
		passes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tend_reconcile_total",
			Help: "Reconcile passes, by result (applied, no-change, held, failed, stalled, fetch-error).",
		}, []string{"result"}),
		passDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tend_reconcile_duration_seconds",
			Help:    "Duration of reconcile passes, by result.",
			Buckets: passBuckets,
		}, []string{"result"}),
		fetchDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "tend_git_fetch_duration_seconds",
			Help:    "Duration of fetches of the desired state, failed ones included.",
			Buckets: fetchBuckets,
		}),
		fetchErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tend_git_fetch_errors_total",
			Help: "Fetches of the desired state that failed.",
		}),
		serverUp:      serverGauge("tend_server_up", "1 when the server could be observed in the last pass."),
		serverHealthy: serverGauge("tend_server_healthy", "1 when the server's health checks passed in the last pass."),
		serverDrifted: serverGauge("tend_server_drifted", "1 when the server differs from its desired state."),
		serverHeld:    serverGauge("tend_server_held", "1 when the server's desired revision is held after a failed verification or a rollback."),
		rollbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tend_rollbacks_total",
			Help: "Rollbacks, by server.",
		}, []string{"server"}),
		applyDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tend_apply_duration_seconds",
			Help:    "Duration of applies on one server, verification included.",
			Buckets: passBuckets,
		}, []string{"server"}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tend_last_successful_sync_timestamp_seconds",
			Help: "Unix time of the last pass that ended applied or no-change; 0 before the first.",
		}),
		webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tend_webhooks_total",
			Help: "Webhook requests, by endpoint and result.",
		}, []string{"endpoint", "result"}),
		backupLast:     serverGauge("tend_backup_last_success_timestamp_seconds", "Unix time of the server's newest good backup."),
		backupDuration: serverGauge("tend_backup_duration_seconds", "How long the server's newest good backup took."),
		backupSize:     serverGauge("tend_backup_size_bytes", "Size of the server's newest good backup archive, as stored."),
		backupFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tend_backup_failures_total",
			Help: "Backups that failed, by server.",
		}, []string{"server"}),
		drillLast: serverGauge("tend_restore_drill_last_success_timestamp_seconds", "Unix time the server's backups were last proven restorable by a drill."),
		drillFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tend_restore_drill_failures_total",
			Help: "Restore drills that failed, by server.",
		}, []string{"server"}),
		scaleDesired:  serverGauge("tend_autoscale_desired_replicas", "Replicas the autoscaler's last decision wants for the server."),
		scaleReplicas: serverGauge("tend_autoscale_replicas", "Replicas tend keeps for the autoscaled server now."),
		scaleRunning:  serverGauge("tend_autoscale_running_replicas", "Replicas of the autoscaled server that are running."),
		replicaUse: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tend_replica_scaling_metric",
			Help: "The last sample of each metric an autoscaled server scales on, per replica: cpu and memory in percent, a metric block's value as read.",
		}, []string{"server", "replica", "metric"}),
		scaleDecisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tend_autoscale_decisions_total",
			Help: "Autoscaling decisions that changed a replica count, by server, direction (up, down) and outcome (applied, failed, held, interrupted).",
		}, []string{"server", "direction", "outcome"}),
		usageCPU:        serverGauge("tend_server_cpu_millicores", "CPU the server's running replicas used at tend run's last resource sample (--usage-interval), summed, in millicores."),
		usageMemory:     serverGauge("tend_server_memory_bytes", "Memory the server's running replicas used at tend run's last resource sample (--usage-interval), summed, in bytes."),
		updateAvailable: serverGauge("tend_update_available", "1 when the last update run found a newer release the server's constraint, pins and update policy allow, and did not commit it (commit is off, or the commit failed)."),
		updateLastRun: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tend_update_last_run_timestamp_seconds",
			Help: "Unix time of the last run of an update job (automatic updates); 0 before the first.",
		}),
		updateFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tend_update_failures_total",
			Help: "Update runs that failed (a source, the branch's desired state, or the push).",
		}),
		updateCommits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tend_update_commits_total",
			Help: "Update commits pushed to the state repository.",
		}),
		serverWaiting: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tend_server_waiting",
			Help: "1 when the server has a change that waits, by what it waits for: a change window, an approval (tend approve), or a promotion (verified long enough in the environment it is promoted from).",
		}, []string{"server", "for"}),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tend_approval_decisions_total",
			Help: "Approvals and rejections of planned changes recorded through this tend's API, by server and decision (approved, rejected).",
		}, []string{"server", "decision"}),
	}
	reg.MustRegister(m.passes, m.passDuration, m.fetchDuration, m.fetchErrors,
		m.serverUp, m.serverHealthy, m.serverDrifted, m.serverHeld,
		m.rollbacks, m.applyDuration, m.lastSuccess, m.webhooks,
		m.backupLast, m.backupDuration, m.backupSize, m.backupFailures, m.drillLast, m.drillFailures,
		m.scaleDesired, m.scaleReplicas, m.scaleRunning, m.replicaUse, m.scaleDecisions, m.usageCPU, m.usageMemory,
		m.updateAvailable, m.updateLastRun, m.updateFailures, m.updateCommits,
		m.serverWaiting, m.decisions)
	for _, r := range PassResults {
		m.passes.WithLabelValues(r)
	}
	return m
}

// Registry returns the registry the metrics live on.
func (m *Metrics) Registry() *prometheus.Registry {
	if m == nil {
		return nil
	}
	return m.reg
}

// Handler serves the exposition of the registry (what GET /metrics does).
func (m *Metrics) Handler() http.Handler {
	if m == nil {
		return http.NotFoundHandler()
	}
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		// Count scrape errors on the same registry and keep serving what
		// could be gathered rather than failing the whole scrape.
		Registry:            m.reg,
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: 4,
	})
}

// ObservePass counts one reconcile pass and its duration under result.
func (m *Metrics) ObservePass(result string, d time.Duration) {
	if m == nil {
		return
	}
	m.passes.WithLabelValues(result).Inc()
	m.passDuration.WithLabelValues(result).Observe(d.Seconds())
}

// ObserveFetch records one fetch of the desired state; err != nil counts
// it as failed too.
func (m *Metrics) ObserveFetch(d time.Duration, err error) {
	if m == nil {
		return
	}
	m.fetchDuration.Observe(d.Seconds())
	if err != nil {
		m.fetchErrors.Inc()
	}
}

// SetServer sets the four state gauges of one server.
func (m *Metrics) SetServer(name string, up, healthy, drifted, held bool) {
	if m == nil {
		return
	}
	m.serverUp.WithLabelValues(name).Set(b2f(up))
	m.serverHealthy.WithLabelValues(name).Set(b2f(healthy))
	m.serverDrifted.WithLabelValues(name).Set(b2f(drifted))
	m.serverHeld.WithLabelValues(name).Set(b2f(held))
}

// SetHeld sets tend_server_held of one server, leaving its other gauges.
func (m *Metrics) SetHeld(name string, held bool) {
	if m == nil {
		return
	}
	m.serverHeld.WithLabelValues(name).Set(b2f(held))
}

// ForgetServer deletes every series of a server that left the fleet: its
// gauges, its rollback counter and its apply histogram.
func (m *Metrics) ForgetServer(name string) {
	if m == nil {
		return
	}
	for _, v := range []*prometheus.GaugeVec{m.serverUp, m.serverHealthy, m.serverDrifted, m.serverHeld} {
		v.DeleteLabelValues(name)
	}
	m.rollbacks.DeleteLabelValues(name)
	m.applyDuration.DeleteLabelValues(name)
	for _, v := range []*prometheus.GaugeVec{m.scaleDesired, m.scaleReplicas, m.scaleRunning, m.updateAvailable} {
		v.DeleteLabelValues(name)
	}
	m.replicaUse.DeletePartialMatch(prometheus.Labels{"server": name})
	m.serverWaiting.DeletePartialMatch(prometheus.Labels{"server": name})
}

// SetWaiting sets tend_server_waiting of one server: 1 for each of what
// its change waits for, 0 for the others.
func (m *Metrics) SetWaiting(name string, waitsFor []string) {
	if m == nil {
		return
	}
	for _, w := range WaitReasons {
		v := 0.0
		for _, x := range waitsFor {
			if x == w {
				v = 1
			}
		}
		m.serverWaiting.WithLabelValues(name, w).Set(v)
	}
}

// IncDecision counts one approval or rejection.
func (m *Metrics) IncDecision(server, decision string) {
	if m == nil {
		return
	}
	m.decisions.WithLabelValues(server, decision).Inc()
}

// IncRollback counts one rollback of server.
func (m *Metrics) IncRollback(server string) {
	if m == nil {
		return
	}
	m.rollbacks.WithLabelValues(server).Inc()
}

// ObserveApply records how long one apply on server took.
func (m *Metrics) ObserveApply(server string, d time.Duration) {
	if m == nil {
		return
	}
	m.applyDuration.WithLabelValues(server).Observe(d.Seconds())
}

// SetLastSuccess records the time of the last successful sync.
func (m *Metrics) SetLastSuccess(t time.Time) {
	if m == nil {
		return
	}
	if t.IsZero() {
		m.lastSuccess.Set(0)
		return
	}
	m.lastSuccess.Set(float64(t.UnixNano()) / 1e9)
}

// IncWebhook counts one webhook request to endpoint ("github", "gitlab",
// "gitea", "generic") with result (the Webhook* constants).
func (m *Metrics) IncWebhook(endpoint, result string) {
	if m == nil {
		return
	}
	m.webhooks.WithLabelValues(endpoint, result).Inc()
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// ObserveBackup records a backup of server: when it was good, its time,
// duration and size; when it failed, one more failure.
func (m *Metrics) ObserveBackup(server string, ok bool, at time.Time, d time.Duration, size int64) {
	if m == nil {
		return
	}
	if !ok {
		m.backupFailures.WithLabelValues(server).Inc()
		return
	}
	m.backupLast.WithLabelValues(server).Set(float64(at.UnixNano()) / 1e9)
	m.backupDuration.WithLabelValues(server).Set(d.Seconds())
	m.backupSize.WithLabelValues(server).Set(float64(size))
}

// ObserveDrill records a restore drill of server.
func (m *Metrics) ObserveDrill(server string, ok bool, at time.Time) {
	if m == nil {
		return
	}
	if !ok {
		m.drillFailures.WithLabelValues(server).Inc()
		return
	}
	m.drillLast.WithLabelValues(server).Set(float64(at.UnixNano()) / 1e9)
}

// SetScale records what the autoscaler last saw of server: the count its
// decision wants, the count tend keeps, the replicas running, and each
// replica's samples by metric name (the series of replicas that are gone
// are removed).
func (m *Metrics) SetScale(server string, desired, replicas, running int, samples map[int]map[string]float64) {
	if m == nil {
		return
	}
	m.scaleDesired.WithLabelValues(server).Set(float64(desired))
	m.scaleReplicas.WithLabelValues(server).Set(float64(replicas))
	m.scaleRunning.WithLabelValues(server).Set(float64(running))
	m.replicaUse.DeletePartialMatch(prometheus.Labels{"server": server})
	for replica, values := range samples {
		for metric, v := range values {
			m.replicaUse.WithLabelValues(server, strconv.Itoa(replica), metric).Set(v)
		}
	}
}

// SetUsage sets each server's use from one resource sample; a server not
// in it (stopped, or gone) has no series until it is sampled again.
func (m *Metrics) SetUsage(servers map[string][2]int64) {
	if m == nil {
		return
	}
	m.usageCPU.Reset()
	m.usageMemory.Reset()
	for name, u := range servers {
		m.usageCPU.WithLabelValues(name).Set(float64(u[0]))
		m.usageMemory.WithLabelValues(name).Set(float64(u[1]))
	}
}

// ObserveScale counts one autoscaling decision that changed (or tried to
// change) a replica count.
func (m *Metrics) ObserveScale(server string, up bool, outcome string) {
	if m == nil {
		return
	}
	dir := "down"
	if up {
		dir = "up"
	}
	m.scaleDecisions.WithLabelValues(server, dir, outcome).Inc()
}

// ObserveUpdate records a run of an update job: its time, a failure, a
// commit pushed, and per server whether an update is available and not
// committed.
func (m *Metrics) ObserveUpdate(at time.Time, failed, pushed bool, available map[string]bool) {
	if m == nil {
		return
	}
	m.updateLastRun.Set(float64(at.UnixNano()) / 1e9)
	if failed {
		m.updateFailures.Inc()
	}
	if pushed {
		m.updateCommits.Inc()
	}
	for server, a := range available {
		m.updateAvailable.WithLabelValues(server).Set(b2f(a))
	}
}
