package docker

import (
	"context"
	"fmt"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"

	"github.com/tendhq/tend/providers"
)

// Halt implements providers.Halter: it stops the replica's containers (as
// docker stop: SIGTERM, then SIGKILL after grace) and keeps them, with
// their volumes, so that CopyIn and CopyOut still work on them. The
// replica's restart policy does not start a container stopped so (except
// "always", when the Engine itself restarts). A stopped container halts
// again without error. A grace of 0 is the provider's stop_timeout.
func (p *Provider) Halt(ctx context.Context, inst providers.Instance, grace time.Duration) error {
	if grace <= 0 {
		grace = p.set.StopTimeout
	}
	managedBy := p.managedByOf(inst.ManagedBy)
	unlock := p.lock(containerName(managedBy, inst.Server, inst.Replica))
	defer unlock()
	ids, err := p.replicaContainers(ctx, managedBy, inst.Server, inst.Replica)
	if err != nil {
		return err
	}
	if len(ids) == 0 {
		return fmt.Errorf("halt %s replica %d: no such replica", inst.Server, inst.Replica)
	}
	// Every container of the replica (a half-done replace may have left
	// two): nothing of it may write the volumes meanwhile.
	for _, id := range ids {
		if err := p.stopContainer(ctx, id, grace); err != nil {
			return fmt.Errorf("halt %s replica %d: %w", inst.Server, inst.Replica, err)
		}
	}
	return nil
}

// Resume implements providers.Halter: it starts the halted container of
// the replica again (inst.ID, or else the one named M.S.i) and returns it
// as inspected. A running container is left alone.
func (p *Provider) Resume(ctx context.Context, inst providers.Instance) (providers.Instance, error) {
	managedBy := p.managedByOf(inst.ManagedBy)
	name := containerName(managedBy, inst.Server, inst.Replica)
	unlock := p.lock(name)
	defer unlock()
	fail := func(err error) (providers.Instance, error) {
		return providers.Instance{}, fmt.Errorf("resume %s replica %d: %w", inst.Server, inst.Replica, err)
	}
	c, err := p.replicaContainer(ctx, managedBy, inst, name)
	if err != nil {
		return fail(err)
	}
	if c.State == nil || !(c.State.Running || c.State.Restarting) {
		if err := p.cli.ContainerStart(ctx, c.ID, container.StartOptions{}); err != nil {
			return fail(p.engineErr("start container "+shortID(c.ID), err))
		}
	}
	out, err := p.inspect(ctx, c.ID)
	if err != nil {
		return fail(err)
	}
	return out, nil
}

// replicaContainer finds the container that stands for inst: inst.ID when
// it is one of the replica's, else the one named name.
func (p *Provider) replicaContainer(ctx context.Context, managedBy string, inst providers.Instance, name string) (container.InspectResponse, error) {
	ids, err := p.replicaContainers(ctx, managedBy, inst.Server, inst.Replica)
	if err != nil {
		return container.InspectResponse{}, err
	}
	var byName *container.InspectResponse
	for _, id := range ids {
		c, err := p.cli.ContainerInspect(ctx, id)
		if cerrdefs.IsNotFound(err) {
			continue
		}
		if err != nil {
			return container.InspectResponse{}, p.engineErr("inspect container "+shortID(id), err)
		}
		if inst.ID != "" && (c.ID == inst.ID || strings.HasPrefix(c.ID, inst.ID)) {
			return c, nil
		}
		if strings.TrimPrefix(c.Name, "/") == name {
			byName = &c
		}
	}
	if byName != nil {
		return *byName, nil
	}
	return container.InspectResponse{}, fmt.Errorf("no container %s", name)
}

// stopContainer stops a container gracefully (SIGTERM, then SIGKILL after
// grace); a container already stopped or gone is fine.
func (p *Provider) stopContainer(ctx context.Context, id string, grace time.Duration) error {
	secs := int(grace.Round(time.Second) / time.Second)
	if grace > 0 && secs == 0 {
		secs = 1
	}
	if err := p.cli.ContainerStop(ctx, id, container.StopOptions{Timeout: &secs}); err != nil && !cerrdefs.IsNotFound(err) {
		return p.engineErr("stop container "+shortID(id), err)
	}
	return nil
}
