package systemd

import (
	"context"

	"github.com/tendhq/tend/providers"
	"github.com/tendhq/tend/providers/internal/hostfs"
)

var _ providers.CapacityReporter = (*Provider)(nil)

// Capacity implements providers.CapacityReporter: units run in systemd's
// slices, not in tend's cgroup, so the host holds its online CPUs and its
// memory (MemTotal). It asks nothing of systemd.
func (p *Provider) Capacity(ctx context.Context) (providers.Capacity, error) {
	return providers.ThisHost(ctx, p.key, hostfs.OnlineMilliCPU(), hostfs.MemTotal())
}
