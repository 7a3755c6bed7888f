package systemd

import (
	"context"
	"fmt"
	"os"

	"github.com/tendhq/tend/providers"
	"github.com/tendhq/tend/providers/internal/hostfs"
)

var _ providers.CapacityReporter = (*Provider)(nil)

// Capacity implements providers.CapacityReporter: units run in systemd's
// slices, not in tend's cgroup, so the host holds its online CPUs and its
// memory (MemTotal). It asks nothing of systemd.
func (p *Provider) Capacity(ctx context.Context) (providers.Capacity, error) {
	if err := ctx.Err(); err != nil {
		return providers.Capacity{}, err
	}
	name, err := os.Hostname()
	if err != nil {
		return providers.Capacity{}, fmt.Errorf("capacity of %s: the host's name: %w", p.key, err)
	}
	return providers.Capacity{Hosts: []providers.HostCapacity{{
		Name: name, MilliCPU: hostfs.OnlineMilliCPU(), MemoryBytes: hostfs.MemTotal(),
	}}}, nil
}
