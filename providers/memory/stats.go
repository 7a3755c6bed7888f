package memory

import (
	"context"
	"fmt"

	"github.com/tendhq/tend/providers"
)

var _ providers.Statser = (*Provider)(nil)

type replicaKey struct {
	server  string
	replica int
}

// SetStats sets what Stats reports for a server's replica from now on,
// whether or not the replica runs.
func (p *Provider) SetStats(server string, replica int, st providers.Stats) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stats == nil {
		p.stats = map[replicaKey]providers.Stats{}
	}
	p.stats[replicaKey{server, replica}] = st
}

// Stats implements providers.Statser: it reports what SetStats set for the
// instance's server and replica, and an error for a replica it was never
// given.
func (p *Provider) Stats(ctx context.Context, inst providers.Instance) (providers.Stats, error) {
	if err := ctx.Err(); err != nil {
		return providers.Stats{}, err
	}
	p.mu.Lock()
	st, ok := p.stats[replicaKey{inst.Server, inst.Replica}]
	p.mu.Unlock()
	if !ok {
		return providers.Stats{}, fmt.Errorf("stats of %s replica %d: no such replica", inst.Server, inst.Replica)
	}
	return st, nil
}
