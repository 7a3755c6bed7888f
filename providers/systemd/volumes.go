package systemd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/tendhq/tend/providers"
	"github.com/tendhq/tend/providers/internal/hostfs"
)

var _ providers.VolumeRemover = (*Provider)(nil)

// RemoveVolumes implements providers.VolumeRemover: it deletes the host
// directory STATE/M/S/volumes/NAME-i of every volume of d without a source
// (names encoded), then the volumes directory and the server's directory
// once they are empty. A volume with a source is never touched, nor
// anything outside those directories.
//
// It refuses while the replica exists: while tend has a record of it, its
// unit file is there, or systemd has its unit active, activating or
// deactivating.
//
// A volume's directory was given to the replica's user, who may have put
// anything in it, links included; its parents are tend's (0711), so that
// user cannot swap the directory itself for a link. The removal never
// follows a link, and as root (the system manager) it chmods nothing; run
// as another user (user_mode), when read-only directories of that user's
// own keep it from removing their content, it makes them writable and
// tries once more (hostfs.RemoveTree). It does not look the user up: a
// drill's user may be gone from the host by now.
func (p *Provider) RemoveVolumes(ctx context.Context, d *providers.Desired, replica int) error {
	if d == nil || d.Server == nil {
		return errors.New("remove volumes: no server")
	}
	s := d.Server
	managedBy := p.managedByOf(d.ManagedBy)
	fail := func(err error) error {
		return fmt.Errorf("remove the volumes of %s replica %d: %w", s.Name, replica, err)
	}
	unit, err := unitName(managedBy, s.Name, replica)
	if err != nil {
		return fail(err)
	}
	// The unit's lock keeps a StartReplica, Halt or Resume of the replica
	// out until the volumes are gone.
	unlock := p.lock(unit)
	defer unlock()
	instDir := p.instanceDir(managedBy, s.Name, replica)
	if exists(filepath.Join(instDir, recordFile)) {
		return fail(errors.New("the replica still exists (tend has a record of it); stop it first"))
	}
	if exists(p.unitPath(unit)) {
		return fail(fmt.Errorf("the unit file %s is still there; stop the replica first", p.unitPath(unit)))
	}
	conn, err := p.bus(ctx)
	if err != nil {
		return fail(err)
	}
	u, err := p.props(ctx, conn, unit)
	if err != nil {
		return fail(err)
	}
	switch u.Active {
	case "active", "activating", "deactivating", "reloading", "refreshing":
		return fail(fmt.Errorf("the unit %s is still %s (%s); stop the replica first", unit, u.Active, u.Sub))
	}
	for _, v := range s.Volumes {
		if v.Source != "" {
			continue
		}
		if v.Name == "" {
			return fail(errors.New("a volume has no name"))
		}
		if err := ctx.Err(); err != nil {
			return fail(err)
		}
		if err := hostfs.RemoveTree(p.volumeDir(managedBy, s.Name, v.Name, replica)); err != nil {
			return fail(fmt.Errorf("volume %s: %w", v.Name, err))
		}
	}
	// Both only once empty: other replicas' volumes and instances stay.
	serverDir := filepath.Dir(instDir)
	_ = os.Remove(filepath.Join(serverDir, "volumes"))
	_ = os.Remove(serverDir)
	return nil
}
