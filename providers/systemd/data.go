package systemd

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/tendhq/tend/providers"
)

// volumeHostDir returns the host directory of the instance's volume
// mounted at vpath (the volume's path in the spec).
func (p *Provider) volumeHostDir(inst providers.Instance, vpath string) (string, *account, error) {
	dir := p.instanceDir(p.managedByOf(inst.ManagedBy), inst.Server, inst.Replica)
	var rec record
	if err := readJSON(filepath.Join(dir, recordFile), &rec); err != nil {
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
	tw := tar.NewWriter(w)
	err = filepath.WalkDir(root, func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(root, name)
		if err != nil || rel == "." {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		link := ""
		if fi.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(name); err != nil {
				return err
			}
		} else if !fi.Mode().IsRegular() && !fi.IsDir() {
			return nil // sockets, pipes, devices: not data
		}
		hdr, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return err
		}
		hdr.Name = filepath.ToSlash(rel)
		if fi.IsDir() {
			hdr.Name += "/"
		}
		hdr.Uname, hdr.Gname = "", ""
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if !fi.Mode().IsRegular() {
			return nil
		}
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		defer f.Close()
		// The header promised hdr.Size bytes; a file that grew is cut.
		_, err = io.Copy(tw, io.LimitReader(f, hdr.Size))
		return err
	})
	if err != nil {
		return fmt.Errorf("copy out %s: %w", vpath, err)
	}
	return tw.Close()
}

// CopyIn replaces the content of the volume at path with a tar stream. The
// stream is unpacked into a directory beside the content first, so a bad
// stream leaves the volume as it was.
func (p *Provider) CopyIn(ctx context.Context, inst providers.Instance, vpath string, r io.Reader) error {
	root, acct, err := p.volumeHostDir(inst, vpath)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(root, 0o700); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(root, ".tend-restore-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := untar(ctx, tmp, r); err != nil {
		return fmt.Errorf("copy in %s: %w", vpath, err)
	}
	// Swap: the old content goes, the new comes in.
	old, err := os.ReadDir(root)
	if err != nil {
		return err
	}
	for _, e := range old {
		if filepath.Join(root, e.Name()) == tmp {
			continue
		}
		if err := os.RemoveAll(filepath.Join(root, e.Name())); err != nil {
			return fmt.Errorf("copy in %s: %w", vpath, err)
		}
	}
	fresh, err := os.ReadDir(tmp)
	if err != nil {
		return err
	}
	for _, e := range fresh {
		if err := os.Rename(filepath.Join(tmp, e.Name()), filepath.Join(root, e.Name())); err != nil {
			return fmt.Errorf("copy in %s: %w", vpath, err)
		}
	}
	// The replica's user owns its data.
	if err := chownTree(root, acct); err != nil {
		return fmt.Errorf("copy in %s: %w", vpath, err)
	}
	return nil
}

// untar unpacks r under dir; no entry can reach outside it. Symbolic links
// are made last, so no entry is written through one.
func untar(ctx context.Context, dir string, r io.Reader) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	type link struct{ target, name string }
	var symlinks []link
	tr := tar.NewReader(r)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		name := path.Clean(strings.TrimPrefix(hdr.Name, "/"))
		if name == "." {
			continue
		}
		if name == ".." || strings.HasPrefix(name, "../") {
			return fmt.Errorf("entry %q points outside the directory", hdr.Name)
		}
		mode := os.FileMode(hdr.Mode).Perm()
		if parent := path.Dir(name); parent != "." {
			if err := root.MkdirAll(parent, 0o755); err != nil {
				return err
			}
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := root.MkdirAll(name, 0o755); err != nil {
				return err
			}
			if err := root.Chmod(name, mode); err != nil {
				return err
			}
		case tar.TypeReg:
			f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
			if err != nil {
				return err
			}
			_, err = io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
			if err := root.Chmod(name, mode); err != nil {
				return err
			}
			_ = root.Chtimes(name, hdr.ModTime, hdr.ModTime)
		case tar.TypeSymlink:
			symlinks = append(symlinks, link{hdr.Linkname, name})
		case tar.TypeLink:
			target := path.Clean(strings.TrimPrefix(hdr.Linkname, "/"))
			if err := root.Link(target, name); err != nil {
				return err
			}
		default:
			// Devices, fifos and the like are not data; skip them.
		}
	}
	for _, l := range symlinks {
		if err := root.Symlink(l.target, l.name); err != nil && !errors.Is(err, os.ErrExist) {
			return err
		}
	}
	return nil
}
