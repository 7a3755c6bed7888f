package hostfs

import (
	"os"
	"path/filepath"
	"testing"
)

// TestRemoveTree removes a tree with read-only directories in it (as a
// program may leave its data), and a link in it is removed, not followed.
func TestRemoveTree(t *testing.T) {
	base := t.TempDir()
	outside := filepath.Join(base, "outside")
	if err := os.MkdirAll(outside, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(outside, "keep"), []byte("keep"), 0o400); err != nil {
		t.Fatal(err)
	}
	tree := filepath.Join(base, "tree")
	deep := filepath.Join(tree, "a", "b")
	if err := os.MkdirAll(deep, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(deep, "f"), []byte("x"), 0o400); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(tree, "a", "link")); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{deep, filepath.Join(tree, "a")} {
		if err := os.Chmod(d, 0o500); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		os.Chmod(filepath.Join(tree, "a"), 0o700)
		os.Chmod(deep, 0o700)
	})
	if err := RemoveTree(tree); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(tree); !os.IsNotExist(err) {
		t.Errorf("%s is there after RemoveTree (%v)", tree, err)
	}
	if fi, err := os.Stat(outside); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("the directory a link pointed to: %v %v, want it kept, mode 0700", fi, err)
	}
	if _, err := os.Stat(filepath.Join(outside, "keep")); err != nil {
		t.Errorf("the file behind the link: %v", err)
	}
	if err := RemoveTree(tree); err != nil {
		t.Errorf("RemoveTree of a path already gone: %v", err)
	}
}
