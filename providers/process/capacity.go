package process

import (
	"context"
	"fmt"
	"os"

	"github.com/tendhq/tend/providers"
	"github.com/tendhq/tend/providers/internal/hostfs"
)

var _ providers.CapacityReporter = (*Provider)(nil)

// Capacity implements providers.CapacityReporter: the replicas run beside
// tend, in its cgroup and on its CPUs, so the host holds what tend itself
// may use: the CPUs of its affinity mask and the host's memory, each
// lowered by a limit of tend's cgroup.
func (p *Provider) Capacity(ctx context.Context) (providers.Capacity, error) {
	if err := ctx.Err(); err != nil {
		return providers.Capacity{}, err
	}
	name, err := os.Hostname()
	if err != nil {
		return providers.Capacity{}, fmt.Errorf("capacity of %s: the host's name: %w", p.key, err)
	}
	return providers.Capacity{Hosts: []providers.HostCapacity{{
		Name: name, MilliCPU: hostfs.OwnMilliCPU(), MemoryBytes: hostfs.OwnMemoryBytes(),
	}}}, nil
}
