package docker

import (
	"context"

	"github.com/tendhq/tend/providers"
)

var _ providers.CapacityReporter = (*Provider)(nil)

// Capacity implements providers.CapacityReporter from the Engine's info:
// its host's name, CPUs (NCPU) and memory (MemTotal), as the Engine sees
// them (inside Docker Desktop's VM, the VM's).
func (p *Provider) Capacity(ctx context.Context) (providers.Capacity, error) {
	info, err := p.cli.Info(ctx)
	if err != nil {
		return providers.Capacity{}, p.engineErr("capacity of "+p.key, err)
	}
	name := info.Name
	if name == "" {
		name = p.set.Host
	}
	return providers.Capacity{Hosts: []providers.HostCapacity{{
		Name: name, MilliCPU: int64(max(info.NCPU, 0)) * 1000, MemoryBytes: max(info.MemTotal, 0),
	}}}, nil
}
