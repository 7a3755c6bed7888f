package systemd

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/tendhq/tend/providers"
)

var _ providers.Halter = (*Provider)(nil)

// Halt implements providers.Halter: it stops the replica's unit as
// StopReplica does (SIGTERM, then SIGKILL after the grace) but keeps its
// unit file, record, environment file, work directory and volumes, so that
// CopyIn and CopyOut still work on it; Observe reports it exited
// (inactive). A stopped unit halts again without error. A replica tend has
// no record of is not touched.
func (p *Provider) Halt(ctx context.Context, inst providers.Instance, grace time.Duration) error {
	unit, err := p.ownUnit(inst)
	if err != nil {
		return fmt.Errorf("halt %s replica %d: %w", inst.Server, inst.Replica, err)
	}
	unlock := p.lock(unit)
	defer unlock()
	conn, err := p.bus(ctx)
	if err != nil {
		return err
	}
	if err := p.stopUnit(ctx, conn, unit, grace); err != nil {
		return fmt.Errorf("halt %s replica %d: %w", inst.Server, inst.Replica, err)
	}
	return nil
}

// Resume implements providers.Halter: it starts the replica's unit again
// (its start rate limit reset first, as StartReplica does) and returns it
// as observed once it is active or failed, or after 2 s. A unit that is
// active or activating is left alone.
func (p *Provider) Resume(ctx context.Context, inst providers.Instance) (providers.Instance, error) {
	fail := func(err error) (providers.Instance, error) {
		return providers.Instance{}, fmt.Errorf("resume %s replica %d: %w", inst.Server, inst.Replica, err)
	}
	unit, err := p.ownUnit(inst)
	if err != nil {
		return fail(err)
	}
	managedBy := p.managedByOf(inst.ManagedBy)
	unlock := p.lock(unit)
	defer unlock()
	conn, err := p.bus(ctx)
	if err != nil {
		return providers.Instance{}, err
	}
	u, err := p.props(ctx, conn, unit)
	if err != nil {
		return fail(err)
	}
	switch u.Active {
	case "active", "activating", "reloading":
		return p.observeUnit(ctx, conn, managedBy, inst.Server, unit)
	}
	_ = conn.ResetFailedUnitContext(ctx, unit)
	ch := make(chan string, 1)
	if _, err := conn.StartUnitContext(ctx, unit, "replace", ch); err != nil {
		return fail(p.busErr("start "+unit, err))
	}
	select {
	case <-ch:
	case <-ctx.Done():
		return fail(ctx.Err())
	case <-time.After(stopTimeout + jobWait):
	}
	p.waitUnit(ctx, conn, unit, startWait, func(u unitProps) bool {
		return u.Active == "active" || u.Active == "failed" || u.Sub == "auto-restart"
	})
	return p.observeUnit(ctx, conn, managedBy, inst.Server, unit)
}

// ownUnit returns the unit of inst when tend has a record of it, as
// StartReplica wrote it.
func (p *Provider) ownUnit(inst providers.Instance) (string, error) {
	managedBy := p.managedByOf(inst.ManagedBy)
	unit, err := unitName(managedBy, inst.Server, inst.Replica)
	if err != nil {
		return "", err
	}
	if !exists(filepath.Join(p.instanceDir(managedBy, inst.Server, inst.Replica), recordFile)) {
		return "", fmt.Errorf("no such replica (tend has no record of the unit %s)", unit)
	}
	return unit, nil
}
