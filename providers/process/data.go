package process

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

// volumeDir returns the host directory of the instance's volume mounted at
// p (the volume's path in the spec).
func (p *Provider) volumeDir(inst providers.Instance, vpath string) (string, error) {
	dir, err := p.instDirOf(inst)
	if err != nil {
		return "", err
	}
	var rec record
	if err := hostfs.ReadJSON(filepath.Join(dir, identityFile), &rec); err != nil {
		return "", fmt.Errorf("%s replica %d: no such instance", inst.Server, inst.Replica)
	}
	for _, v := range rec.Volumes {
		if path.Clean(v.Path) == path.Clean(vpath) {
			return v.HostDir, nil
		}
	}
	return "", fmt.Errorf("%s replica %d has no volume at %s: the process provider copies volumes only", inst.Server, inst.Replica, vpath)
}

// CopyOut writes the volume at path as a tar stream, names relative to the
// volume's directory.
func (p *Provider) CopyOut(ctx context.Context, inst providers.Instance, vpath string, w io.Writer) error {
	root, err := p.volumeDir(inst, vpath)
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
	root, err := p.volumeDir(inst, vpath)
	if err != nil {
		return err
	}
	if err := dirtar.Replace(ctx, root, r); err != nil {
		return fmt.Errorf("copy in %s: %w", vpath, err)
	}
	return nil
}
