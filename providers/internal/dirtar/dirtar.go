// Package dirtar moves a directory's content as a tar stream, for the
// providers whose volumes are host directories (process, systemd): Write
// for backups (CopyOut), Replace for restores (CopyIn).
package dirtar

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
)

// Write writes the content of root as a tar stream, names relative to root.
// Sockets, pipes and devices are not data and are left out.
func Write(ctx context.Context, root string, w io.Writer) error {
	tw := tar.NewWriter(w)
	err := filepath.WalkDir(root, func(name string, d fs.DirEntry, err error) error {
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
		return err
	}
	return tw.Close()
}

// Replace replaces the content of root with a tar stream. The stream is
// unpacked into a directory beside the content first, so a bad stream
// leaves root as it was. No entry can reach outside root.
func Replace(ctx context.Context, root string, r io.Reader) error {
	if err := os.MkdirAll(root, 0o700); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(root, ".tend-restore-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := Extract(ctx, tmp, r); err != nil {
		return err
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
			return err
		}
	}
	fresh, err := os.ReadDir(tmp)
	if err != nil {
		return err
	}
	for _, e := range fresh {
		if err := os.Rename(filepath.Join(tmp, e.Name()), filepath.Join(root, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// Extract unpacks the tar stream r under dir; no entry can reach outside
// it. Symbolic links
// are made last, so no entry is written through one.
func Extract(ctx context.Context, dir string, r io.Reader) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	type link struct{ target, name string }
	var symlinks []link
	buf := make([]byte, 256<<10) // one copy buffer for every file
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
			_, err = io.CopyBuffer(struct{ io.Writer }{f}, tr, buf) // not os.File.ReadFrom, which would allocate its own buffer
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
