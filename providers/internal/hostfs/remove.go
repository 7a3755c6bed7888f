package hostfs

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
)

// RemoveTree removes path and everything under it as os.RemoveAll does: a
// symbolic link is removed, never followed, and a path already gone is no
// error. A program may leave directories of its data read-only (0500), so
// that its own user cannot remove what is in them; when the removal fails
// for want of permission and tend is not root, such directories are made
// writable by their owner and the removal is tried once more. As root
// nothing is chmodded: root needs no permission, and a chmod by root that
// follows a link a replica's user put there could open a file of root's.
func RemoveTree(path string) error {
	err := os.RemoveAll(path)
	if err == nil || !errors.Is(err, fs.ErrPermission) || os.Geteuid() == 0 {
		return err
	}
	_ = filepath.WalkDir(path, func(p string, d fs.DirEntry, werr error) error {
		if werr == nil && d.IsDir() {
			if fi, err := os.Lstat(p); err == nil && fi.IsDir() && fi.Mode().Perm()&0o700 != 0o700 {
				_ = os.Chmod(p, fi.Mode().Perm()|0o700)
			}
		}
		return nil
	})
	return os.RemoveAll(path)
}
