package process

import (
	"context"

	"github.com/tendhq/tend/providers"
	"github.com/tendhq/tend/providers/internal/hostfs"
)

var _ providers.CapacityReporter = (*Provider)(nil)

// Capacity implements providers.CapacityReporter: the replicas run beside
// tend, in its cgroup and on its CPUs, so the host holds what tend itself
// may use: the CPUs of its affinity mask and the host's memory, each
// lowered by a limit of tend's cgroup.
func (p *Provider) Capacity(ctx context.Context) (providers.Capacity, error) {
	return providers.ThisHost(ctx, p.key, hostfs.OwnMilliCPU(), hostfs.OwnMemoryBytes())
}
