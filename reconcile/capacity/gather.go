package capacity

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/tendhq/tend/providers"
	"github.com/tendhq/tend/spec"
)

// This file is the I/O that feeds Compute: one Capacity call per provider,
// and one Stats sample per replica for `tend capacity`.

// ProviderFunc returns the provider of a key (TYPE.NAME), such as the
// engine's registry does.
type ProviderFunc func(key string) (providers.Provider, error)

// Keys returns the providers whose capacity a report needs: those of the
// servers selects picks, only of those with resources when sizedOnly (the
// plan's check: no call at all when no server is sized), else also every
// declared provider.
func Keys(cfg *spec.Config, selects func(map[string]string) bool, sizedOnly bool) []string {
	set := map[string]bool{}
	if cfg == nil {
		return nil
	}
	for _, name := range Selected(cfg, selects) {
		if s := cfg.Servers[name]; s.Provider != "" && (!sizedOnly || Sized(s)) {
			set[s.Provider] = true
		}
	}
	if !sizedOnly {
		for k := range cfg.Providers {
			set[k] = true
		}
		if len(cfg.Providers) == 0 {
			set[spec.DefaultProcessProvider] = true
		}
	}
	return slices.Sorted(maps.Keys(set))
}

// ErrNoCapacity is the error of a provider that cannot report a capacity.
var ErrNoCapacity = errors.New("the provider cannot report its capacity")

// CapacityTimeout bounds one provider's Capacity call.
const CapacityTimeout = 30 * time.Second

// ReadCapacities asks each provider of keys for its capacity, once, all at
// once. A provider that cannot be built, is no CapacityReporter or fails
// is in errs instead.
func ReadCapacities(ctx context.Context, keys []string, get ProviderFunc) (caps map[string]providers.Capacity, errs map[string]error) {
	caps, errs = map[string]providers.Capacity{}, map[string]error{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, key := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := readOne(ctx, key, get)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs[key] = err
				return
			}
			caps[key] = c
		}()
	}
	wg.Wait()
	return caps, errs
}

func readOne(ctx context.Context, key string, get ProviderFunc) (providers.Capacity, error) {
	p, err := get(key)
	if err != nil {
		return providers.Capacity{}, err
	}
	cr, ok := p.(providers.CapacityReporter)
	if !ok {
		return providers.Capacity{}, fmt.Errorf("%w (%s)", ErrNoCapacity, key)
	}
	ctx, cancel := context.WithTimeout(ctx, CapacityTimeout)
	defer cancel()
	return cr.Capacity(ctx)
}

// StatsTimeout bounds one replica's Stats sample.
const StatsTimeout = 10 * time.Second

// SampleUsage takes one live Stats sample of every running replica of the
// servers selects picks (on the server's own provider), at most parallel
// at once, and sums them by server as Usage.Now. Replicas whose provider
// has no Stats, or whose sample fails, are left out: Usage.Replicas says
// how many were sampled.
//
// Stats gives CPU in percent of one core, or of the replica's CPU limit
// when its resources set one (the providers.Statser contract, as the
// autoscaler reads it); the server's resources stand for that limit here.
func SampleUsage(ctx context.Context, cfg *spec.Config, selects func(map[string]string) bool, observed map[string][]providers.Instance, get ProviderFunc, parallel int) map[string]Usage {
	type job struct {
		s    *spec.Server
		st   providers.Statser
		inst providers.Instance
	}
	var jobs []job
	picked := map[string]bool{}
	for _, name := range Selected(cfg, selects) {
		picked[name] = true
	}
	for _, key := range slices.Sorted(maps.Keys(observed)) {
		p, err := get(key)
		if err != nil {
			continue
		}
		st, ok := p.(providers.Statser)
		if !ok {
			continue
		}
		for _, inst := range observed[key] {
			s := cfg.Servers[inst.Server]
			if s == nil || !picked[inst.Server] || s.Provider != key || inst.State != providers.StateRunning {
				continue
			}
			jobs = append(jobs, job{s, st, inst})
		}
	}
	out := map[string]Usage{}
	var mu sync.Mutex
	sem := make(chan struct{}, max(parallel, 1))
	var wg sync.WaitGroup
	for _, j := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			sctx, cancel := context.WithTimeout(ctx, StatsTimeout)
			defer cancel()
			stats, err := j.st.Stats(sctx, j.inst)
			if err != nil {
				return
			}
			a := UsedAmount(j.s, stats)
			mu.Lock()
			defer mu.Unlock()
			u := out[j.s.Name]
			now := a
			if u.Now != nil {
				now = u.Now.Add(a)
			}
			u.Now, u.Replicas = &now, u.Replicas+1
			out[j.s.Name] = u
		}()
	}
	wg.Wait()
	return out
}

// UsedAmount turns one replica's Stats into an Amount: its memory, and its
// CPU in millicores (CPUPercent is of the server's CPU limit when it sets
// one, else of one core).
func UsedAmount(s *spec.Server, st providers.Stats) Amount {
	base := 1000.0
	if s.Resources != nil && s.Resources.MilliCPU > 0 {
		base = float64(s.Resources.MilliCPU)
	}
	milli := st.CPUPercent / 100 * base
	if math.IsNaN(milli) || milli < 0 {
		milli = 0
	}
	return Amount{MilliCPU: int64(math.Min(math.Round(milli), math.MaxInt64/2)), MemoryBytes: max(st.MemoryBytes, 0)}
}
