package systemd

import (
	"context"
	"fmt"
	"io"
	"path"
	"path/filepath"

	"github.com/tendhq/tend/providers"
	"github.com/tendhq/tend/providers/internal/dirtar"
	"github.com/tendhq/tend/providers/internal/hostfs"
)

// volumeHostDir returns the host directory of the instance's volume
// mounted at vpath (the volume's path in the spec).
func (p *Provider) volumeHostDir(inst providers.Instance, vpath string) (string, *account, error) {
	dir := p.instanceDir(p.managedByOf(inst.ManagedBy), inst.Server, inst.Replica)
	var rec record
	if err := hostfs.ReadJSON(filepath.Join(dir, recordFile), &rec); err != nil {
		return "", nil, fmt.Errorf("%s replica %d: no such instance", inst.Server, inst.Replica)
	}
	for _, v := range rec.Volumes {
		if path.Clean(v.Path) == path.Clean(vpath) {
			acct, err := p.lookupUser(rec.User)
			if err != nil {
				return "", nil, err
			}
			return v.HostDir, acct, nil
		}
	}
	return "", nil, fmt.Errorf("%s replica %d has no volume at %s: the systemd provider copies volumes only", inst.Server, inst.Replica, vpath)
}

// CopyOut writes the volume at path as a tar stream, names relative to the
// volume's directory.
func (p *Provider) CopyOut(ctx context.Context, inst providers.Instance, vpath string, w io.Writer) error {
	root, _, err := p.volumeHostDir(inst, vpath)
	if err != nil {
		return err
	}
	if err := dirtar.Write(ctx, root, w); err != nil {
		return fmt.Errorf("copy out %s: %w", vpath, err)
	}
	return nil
}

// CopyIn replaces the content of the volume at path with a tar stream. The
// stream is unpacked into a directory beside the content first, so a bad
// stream leaves the volume as it was.
func (p *Provider) CopyIn(ctx context.Context, inst providers.Instance, vpath string, r io.Reader) error {
	root, acct, err := p.volumeHostDir(inst, vpath)
	if err != nil {
		return err
	}
	if err := dirtar.Replace(ctx, root, r); err != nil {
		return fmt.Errorf("copy in %s: %w", vpath, err)
	}
	// The replica's user owns its data.
	if err := chownTree(root, acct); err != nil {
		return fmt.Errorf("copy in %s: %w", vpath, err)
	}
	return nil
}
