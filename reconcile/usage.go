package reconcile

import (
	"context"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/tendhq/tend/providers"
	"github.com/tendhq/tend/reconcile/capacity"
	"github.com/tendhq/tend/reconcile/state"
)

// Defaults of tend run's resource sampling (--usage-interval, --usage-keep).
const (
	DefaultUsageInterval = time.Minute
	DefaultUsageKeep     = 24 * time.Hour
)

// usageParallel bounds the replicas sampled at once for the usage record.
const usageParallel = 8

// RecordUsage takes one Stats sample of every running replica of the
// servers on this host (on the server's own provider; providers without
// Stats are left out), sums them per server and records them in the store,
// deleting the samples older than keep (none when keep is 0). It returns
// what it recorded. tend capacity reads the average and the peak of these.
func (e *Engine) RecordUsage(ctx context.Context, src *Source, keep time.Duration) ([]state.UsageSample, error) {
	cfg := src.Config
	observed, err := e.Observe(ctx, cfg)
	if err != nil {
		return nil, err
	}
	get := func(key string) (providers.Provider, error) { return e.Registry.Get(cfg, key, e.ProvEnv) }
	now := e.now()
	usage := capacity.SampleUsage(ctx, cfg, e.Host.Matches, observed, get, usageParallel)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	samples := make([]state.UsageSample, 0, len(usage))
	for _, name := range capacity.Selected(cfg, e.Host.Matches) {
		u, ok := usage[name]
		if !ok || u.Now == nil {
			continue
		}
		samples = append(samples, state.UsageSample{Server: name, At: now, Replicas: u.Replicas, MilliCPU: u.Now.MilliCPU, MemoryBytes: u.Now.MemoryBytes})
	}
	var since time.Time
	if keep > 0 {
		since = now.Add(-keep)
	}
	return samples, e.Store.RecordUsage(samples, since)
}

// sampleUsage records what the servers use every UsageInterval until ctx
// ends. It only reads the fleet, beside the loop; its one write is a short
// transaction of its own.
func (l *Loop) sampleUsage(ctx context.Context) {
	t := time.NewTicker(l.UsageInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		src := l.LastGood()
		if src == nil {
			continue
		}
		samples, err := l.Engine.RecordUsage(ctx, src, l.UsageKeep)
		if err != nil {
			if ctx.Err() == nil {
				l.logOnce("resource sampling failed", logrus.Fields{"error": err.Error()})
			}
			continue
		}
		if um, ok := l.Metrics.(UsageMetrics); ok {
			by := make(map[string][2]int64, len(samples))
			for _, u := range samples {
				by[u.Server] = [2]int64{u.MilliCPU, u.MemoryBytes}
			}
			um.SetUsage(by)
		}
	}
}
