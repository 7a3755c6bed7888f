package process

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/tendhq/tend/providers"
	"github.com/tendhq/tend/providers/internal/hostfs"
)

// Halt stops the instance's supervisor and child exactly as StopReplica
// does, but keeps the instance directory: its identity, spec and files
// stay, so CopyIn and CopyOut still find its volumes, and Resume starts it
// again. Observe reports a halted instance as exited. Halting a halted
// instance is no error; an instance that does not exist is.
func (p *Provider) Halt(ctx context.Context, inst providers.Instance, grace time.Duration) error {
	dir, err := p.instDirOf(inst)
	if err != nil {
		return err
	}
	unlock := p.lock(dir)
	defer unlock()
	fail := func(err error) error {
		return fmt.Errorf("halt %s replica %d: %w", inst.Server, inst.Replica, err)
	}
	if _, err := os.Stat(filepath.Join(dir, identityFile)); err != nil {
		return fail(errors.New("no such instance"))
	}
	if err := p.stopProcesses(ctx, dir, grace); err != nil {
		return fail(err)
	}
	if err := hostfs.WriteFileAtomic(filepath.Join(dir, haltedFile), []byte(time.Now().UTC().Format(time.RFC3339)+"\n"), 0o644); err != nil {
		return fail(err)
	}
	return nil
}

// Resume starts a supervisor for the existing instance directory again, as
// StartReplica does for a new one, and returns the instance as observed
// once the child is up (or has failed). An instance whose supervisor runs
// is left alone. What is left of an instance whose supervisor died (a child
// it no longer watches) is stopped first.
func (p *Provider) Resume(ctx context.Context, inst providers.Instance) (providers.Instance, error) {
	dir, err := p.instDirOf(inst)
	if err != nil {
		return providers.Instance{}, err
	}
	managedBy := p.managedByOf(inst.ManagedBy)
	unlock := p.lock(dir)
	defer unlock()
	fail := func(err error) (providers.Instance, error) {
		return providers.Instance{}, fmt.Errorf("resume %s replica %d: %w", inst.Server, inst.Replica, err)
	}
	var rec record
	if err := hostfs.ReadJSON(filepath.Join(dir, identityFile), &rec); err != nil {
		return fail(errors.New("no such instance"))
	}
	if p.supervisorAlive(dir, readInstance(dir)) {
		return p.observeInstance(dir, managedBy, inst.Server, inst.Replica), nil
	}
	if err := p.stopProcesses(ctx, dir, 0); err != nil {
		return fail(err)
	}
	// The last supervisor's status and stop request are not the new one's:
	// waitStarted must wait for the new supervisor's first report.
	for _, name := range []string{statusFile, stopFile} {
		if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fail(err)
		}
	}
	// The volumes may have been removed by hand meanwhile; the replica
	// expects them (CopyIn makes them too).
	for _, v := range rec.Volumes {
		if err := os.MkdirAll(v.HostDir, 0o700); err != nil {
			return fail(fmt.Errorf("volume %s: %w", v.Name, err))
		}
	}
	sup, exited, err := p.spawn(dir)
	if err != nil {
		return fail(fmt.Errorf("start the supervisor: %w", err))
	}
	if err := hostfs.WriteFileAtomic(filepath.Join(dir, supPidFile), []byte(strconv.Itoa(sup)+"\n"), 0o644); err != nil {
		return fail(err)
	}
	if err := os.Remove(filepath.Join(dir, haltedFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fail(err)
	}
	if err := p.waitStarted(ctx, dir, exited); err != nil {
		return fail(err)
	}
	return p.observeInstance(dir, managedBy, inst.Server, inst.Replica), nil
}
