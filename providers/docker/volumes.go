package docker

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"

	"github.com/tendhq/tend/providers"
)

var _ providers.VolumeRemover = (*Provider)(nil)

// RemoveVolumes implements providers.VolumeRemover: it removes the named
// volume M.S.NAME.i of every volume of d without a source (a bind mount is
// never touched). A volume is removed only when its labels say it is this
// tend's, of this server (and, when it has that label, of this replica);
// another is refused and left. It refuses while the replica has a
// container (running, halted or stopped), and while any container still
// uses the volume; a volume already gone is no error.
func (p *Provider) RemoveVolumes(ctx context.Context, d *providers.Desired, replica int) error {
	if d == nil || d.Server == nil {
		return errors.New("remove volumes: no server")
	}
	s := d.Server
	managedBy := p.managedByOf(d.ManagedBy)
	fail := func(err error) error {
		return fmt.Errorf("remove the volumes of %s replica %d: %w", s.Name, replica, err)
	}
	// The replica's lock keeps a StartReplica of it out until the volumes
	// are gone.
	unlock := p.lock(containerName(managedBy, s.Name, replica))
	defer unlock()
	ids, err := p.replicaContainers(ctx, managedBy, s.Name, replica)
	if err != nil {
		return fail(err)
	}
	if len(ids) > 0 {
		return fail(fmt.Errorf("the replica still exists (container %s); stop it first", shortID(ids[0])))
	}
	for _, v := range s.Volumes {
		if v.Source != "" {
			continue
		}
		name := volumeName(managedBy, s.Name, v.Name, replica)
		vol, err := p.cli.VolumeInspect(ctx, name)
		if cerrdefs.IsNotFound(err) {
			continue
		}
		if err != nil {
			return fail(p.engineErr("inspect volume "+name, err))
		}
		if vol.Labels[providers.LabelManagedBy] != managedBy || vol.Labels[providers.LabelServer] != s.Name {
			return fail(fmt.Errorf("the volume %s is not %s's volume of %s (labels %s=%q, %s=%q): left alone",
				name, managedBy, s.Name, providers.LabelManagedBy, vol.Labels[providers.LabelManagedBy], providers.LabelServer, vol.Labels[providers.LabelServer]))
		}
		if r, ok := vol.Labels[providers.LabelReplica]; ok && r != strconv.Itoa(replica) {
			return fail(fmt.Errorf("the volume %s is replica %s's, not %d's: left alone", name, r, replica))
		}
		users, err := p.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("volume", name))})
		if err != nil {
			return fail(p.engineErr("list the containers of volume "+name, err))
		}
		if len(users) > 0 {
			return fail(fmt.Errorf("the volume %s is still used by %s", name, containerRef(users[0])))
		}
		if err := p.cli.VolumeRemove(ctx, name, false); err != nil {
			switch {
			case cerrdefs.IsNotFound(err):
				continue
			case cerrdefs.IsConflict(err):
				return fail(fmt.Errorf("the volume %s is still in use: %w", name, err))
			}
			return fail(p.engineErr("remove volume "+name, err))
		}
	}
	return nil
}

// containerRef names a container for a message: its name, else its id.
func containerRef(c container.Summary) string {
	if len(c.Names) > 0 {
		return "container " + strings.TrimPrefix(c.Names[0], "/")
	}
	return "container " + shortID(c.ID)
}
