package process

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/tendhq/tend/providers"
	"github.com/tendhq/tend/providers/internal/hostfs"
)

var _ providers.VolumeRemover = (*Provider)(nil)

// RemoveVolumes implements providers.VolumeRemover: it deletes the host
// directory ROOT/MANAGEDBY/SERVER/volumes/NAME-REPLICA of every volume of
// d without a source, then the volumes directory and the server's
// directory once they are empty. A volume with a source is never touched,
// nor anything outside those directories. It refuses while the replica's
// instance directory exists (the replica runs, is halted, or was not
// stopped). A volume already gone is no error.
func (p *Provider) RemoveVolumes(ctx context.Context, d *providers.Desired, replica int) error {
	if d == nil || d.Server == nil {
		return errors.New("remove volumes: no server")
	}
	s := d.Server
	managedBy := p.managedByOf(d.ManagedBy)
	fail := func(err error) error {
		return fmt.Errorf("remove the volumes of %s replica %d: %w", s.Name, replica, err)
	}
	dir, err := p.instanceDir(managedBy, s.Name, replica)
	if err != nil {
		return fail(err)
	}
	// The instance's lock keeps a StartReplica, Halt or Resume of the
	// replica out until the volumes are gone.
	unlock := p.lock(dir)
	defer unlock()
	if _, err := os.Lstat(dir); err == nil {
		return fail(fmt.Errorf("the replica still exists (%s); stop it first", dir))
	} else if !errors.Is(err, os.ErrNotExist) {
		return fail(err)
	}
	serverDir := filepath.Dir(dir)
	volumes := filepath.Join(serverDir, volumesDirName)
	for _, v := range s.Volumes {
		if v.Source != "" {
			continue
		}
		if err := checkComponent("volume name", v.Name); err != nil {
			return fail(err)
		}
		if err := ctx.Err(); err != nil {
			return fail(err)
		}
		if err := hostfs.RemoveTree(filepath.Join(volumes, v.Name+"-"+strconv.Itoa(replica))); err != nil {
			return fail(fmt.Errorf("volume %s: %w", v.Name, err))
		}
	}
	// Both only once empty: other replicas' volumes and instances stay.
	_ = os.Remove(volumes)
	_ = os.Remove(serverDir)
	return nil
}
