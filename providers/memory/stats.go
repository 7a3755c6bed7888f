package memory

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"weak"

	"github.com/tendhq/tend/providers"
)

var _ providers.Statser = (*Provider)(nil)

// The stats a test sets are kept beside the Provider, in a table keyed by
// a weak pointer to it, so that this file alone makes the provider a
// Statser. An entry goes away with its provider.
var statsTable struct {
	mu sync.Mutex
	m  map[weak.Pointer[Provider]]map[replicaKey]providers.Stats
}

type replicaKey struct {
	server  string
	replica int
}

// SetStats sets what Stats reports for a server's replica from now on,
// whether or not the replica runs.
func (p *Provider) SetStats(server string, replica int, st providers.Stats) {
	key := weak.Make(p)
	statsTable.mu.Lock()
	defer statsTable.mu.Unlock()
	if statsTable.m == nil {
		statsTable.m = map[weak.Pointer[Provider]]map[replicaKey]providers.Stats{}
	}
	byReplica := statsTable.m[key]
	if byReplica == nil {
		byReplica = map[replicaKey]providers.Stats{}
		statsTable.m[key] = byReplica
		runtime.AddCleanup(p, func(k weak.Pointer[Provider]) {
			statsTable.mu.Lock()
			defer statsTable.mu.Unlock()
			delete(statsTable.m, k)
		}, key)
	}
	byReplica[replicaKey{server, replica}] = st
}

// Stats implements providers.Statser: it reports what SetStats set for the
// instance's server and replica, and an error for a replica it was never
// given.
func (p *Provider) Stats(ctx context.Context, inst providers.Instance) (providers.Stats, error) {
	if err := ctx.Err(); err != nil {
		return providers.Stats{}, err
	}
	statsTable.mu.Lock()
	st, ok := statsTable.m[weak.Make(p)][replicaKey{inst.Server, inst.Replica}]
	statsTable.mu.Unlock()
	if !ok {
		return providers.Stats{}, fmt.Errorf("stats of %s replica %d: no such replica", inst.Server, inst.Replica)
	}
	return st, nil
}
