package backup

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/klauspost/compress/gzip"
)

func init() {
	// A passphrase costs 1/256 of the real work here (a few ms, not
	// seconds, and not a minute under the race detector).
	scryptWorkFactor = 10
}

// testManifest is the manifest of backup id of server db.
func testManifest(server, id string) Manifest {
	return Manifest{
		ID: id, Server: server, Version: "16.4", Revision: "0123abcd", RevisionID: 3,
		SpecHash: "spec-hash", Provider: "process", Replica: 0, Trigger: "manual",
		TendVersion: "test", CreatedAt: time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC),
	}
}

func newDir(t testing.TB) *Dir {
	t.Helper()
	d, err := NewDir(filepath.Join(t.TempDir(), "backups"))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// makeTree fills dir with what a data path holds: files of several modes,
// nested directories, an empty directory and a symlink. It returns a
// random blob that is in it verbatim.
func makeTree(t testing.TB, dir string) []byte {
	t.Helper()
	blob := make([]byte, 256<<10)
	rand.Read(blob)
	files := []struct {
		name string
		mode fs.FileMode
		data []byte
	}{
		{"config.conf", 0o640, []byte("listen = 5432\nmax_connections = 100\n")},
		{"run.sh", 0o755, []byte("#!/bin/sh\nexec true\n")},
		{"base/1/2619", 0o600, blob},
		{"base/1/empty-file", 0o600, nil},
		{"base/2/deep/deeper/pg_filenode.map", 0o644, bytes.Repeat([]byte("filenode "), 1000)},
	}
	for _, f := range files {
		p := filepath.Join(dir, filepath.FromSlash(f.name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, f.data, f.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, f.mode); err != nil { // past the umask
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "pg_notify"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(dir, "base", "2"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("config.conf", filepath.Join(dir, "current.conf")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../config.conf", filepath.Join(dir, "base", "1", "up")); err != nil {
		t.Fatal(err)
	}
	return blob
}

// tarDir writes the content of root as a tar stream, names relative to
// root, as a provider's CopyOut does.
func tarDir(root string, w io.Writer) error {
	tw := tar.NewWriter(w)
	err := filepath.WalkDir(root, func(name string, d fs.DirEntry, err error) error {
		if err != nil {
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
		}
		hdr, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return err
		}
		hdr.Name = filepath.ToSlash(rel)
		if fi.IsDir() {
			hdr.Name += "/"
		}
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
		_, err = io.Copy(tw, f)
		return err
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

// untar unpacks a tar stream into root, as a provider's CopyIn does.
func untar(root string, r io.Reader) error {
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		name := path.Clean(hdr.Name)
		if path.IsAbs(name) || name == ".." || strings.HasPrefix(name, "../") {
			return fmt.Errorf("entry %q points outside", hdr.Name)
		}
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		mode := fs.FileMode(hdr.Mode).Perm()
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o700); err != nil {
				return err
			}
			if err := os.Chmod(p, mode); err != nil {
				return err
			}
		case tar.TypeReg:
			f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, mode)
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
			if err := os.Chmod(p, mode); err != nil {
				return err
			}
		case tar.TypeSymlink:
			if err := os.Symlink(hdr.Linkname, p); err != nil {
				return err
			}
		case tar.TypeLink:
			if err := os.Link(filepath.Join(root, filepath.FromSlash(hdr.Linkname)), p); err != nil {
				return err
			}
		default:
			return fmt.Errorf("entry %q has type %q", hdr.Name, hdr.Typeflag)
		}
	}
}

// snapshot describes every entry under root: its type, permissions and
// content (or link target).
func snapshot(t testing.TB, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, name)
		if rel == "." {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(name)
			if err != nil {
				return err
			}
			out[rel] = "symlink -> " + target
		case fi.IsDir():
			out[rel] = fmt.Sprintf("dir %v", fi.Mode().Perm())
		default:
			data, err := os.ReadFile(name)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(data)
			out[rel] = fmt.Sprintf("file %v %d %x", fi.Mode().Perm(), len(data), sum[:8])
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sameTree(t testing.TB, want, got map[string]string) {
	t.Helper()
	for k, w := range want {
		if g, ok := got[k]; !ok {
			t.Errorf("%s is missing after the restore (want %s)", k, w)
		} else if g != w {
			t.Errorf("%s: got %s, want %s", k, g, w)
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s (%s) was not backed up but is restored", k, g)
		}
	}
}

// copyOutDirs is a CopyOut that tars roots[path].
func copyOutDirs(roots map[string]string) func(context.Context, string, io.Writer) error {
	return func(_ context.Context, p string, w io.Writer) error {
		root, ok := roots[p]
		if !ok {
			return fmt.Errorf("no volume at %s", p)
		}
		return tarDir(root, w)
	}
}

// restoreInto fetches and extracts m, each path into a new directory
// under root; it returns the directories and the dump.
func restoreInto(t testing.TB, dest Destination, m *Manifest, key, root string) (map[string]string, []byte) {
	t.Helper()
	ctx := context.Background()
	l, err := Fetch(ctx, dest, m, key)
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	defer l.Close()
	dirs := map[string]string{}
	var dump []byte
	err = l.Extract(ctx, func(_ context.Context, p string, r io.Reader) error {
		if _, dup := dirs[p]; dup {
			return fmt.Errorf("path %s given twice", p)
		}
		dir := filepath.Join(root, fmt.Sprint(len(dirs)))
		dirs[p] = dir
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		return untar(dir, r)
	}, func(_ context.Context, r io.Reader) error {
		dump, err = io.ReadAll(r)
		return err
	})
	if err != nil {
		t.Fatalf("Extract: %v", err)
	}
	return dirs, dump
}

func archivePath(d *Dir, m *Manifest) string {
	return filepath.Join(d.root, filepath.FromSlash(m.Archive))
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	data, conf := t.TempDir(), t.TempDir()
	makeTree(t, data)
	if err := os.WriteFile(filepath.Join(conf, "tend.conf"), []byte("a = 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	dumpOut := bytes.Repeat([]byte("COPY public.t (id) FROM stdin;\n1\n2\n\\.\n"), 5000)
	dest := newDir(t)
	in := Input{
		Paths:   []string{"/var/lib/postgresql/data", "/etc/tend"},
		CopyOut: copyOutDirs(map[string]string{"/var/lib/postgresql/data": data, "/etc/tend": conf}),
		Dump: func(_ context.Context, w io.Writer) error {
			_, err := w.Write(dumpOut)
			return err
		},
	}
	m, err := Create(ctx, dest, testManifest("db", "20261206T120000Z"), in)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}

	// The manifest counts what it holds.
	wantPaths := []Path{
		{Path: "/var/lib/postgresql/data", Files: 5, Bytes: 256<<10 + 36 + 20 + 9000},
		{Path: "/etc/tend", Files: 1, Bytes: 6},
	}
	if !slices.Equal(m.Paths, wantPaths) {
		t.Errorf("manifest paths = %+v, want %+v", m.Paths, wantPaths)
	}
	sum := sha256.Sum256(dumpOut)
	if m.Command == nil || m.Command.Bytes != int64(len(dumpOut)) || m.Command.SHA256 != hex.EncodeToString(sum[:]) {
		t.Errorf("manifest command = %+v, want %d bytes of sha256 %x", m.Command, len(dumpOut), sum)
	}
	if m.Format != FormatVersion || m.Encrypted || m.Archive != "db/20261206T120000Z.tar.gz" {
		t.Errorf("manifest format %d, encrypted %v, archive %q", m.Format, m.Encrypted, m.Archive)
	}
	raw, err := os.ReadFile(archivePath(dest, m))
	if err != nil {
		t.Fatal(err)
	}
	if got := sha256.Sum256(raw); m.Size != int64(len(raw)) || m.SHA256 != hex.EncodeToString(got[:]) {
		t.Errorf("manifest says %d bytes, sha256 %s; the archive has %d bytes, sha256 %x", m.Size, m.SHA256, len(raw), got)
	}
	names, err := dest.List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"db/20261206T120000Z.json", "db/20261206T120000Z.tar.gz"}; !slices.Equal(names, want) {
		t.Errorf("destination holds %q, want %q", names, want)
	}
	stored, err := ReadManifest(ctx, dest, ManifestName("db", m.ID))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(stored, m) {
		t.Errorf("stored manifest\n%+v\ndiffers from the one Create returned\n%+v", *stored, *m)
	}
	if err := Verify(ctx, dest, stored); err != nil {
		t.Errorf("Verify: %v", err)
	}

	dirs, dump := restoreInto(t, dest, stored, "", t.TempDir())
	if len(dirs) != 2 {
		t.Fatalf("Extract gave paths %v, want both", dirs)
	}
	sameTree(t, snapshot(t, data), snapshot(t, dirs["/var/lib/postgresql/data"]))
	sameTree(t, snapshot(t, conf), snapshot(t, dirs["/etc/tend"]))
	if !bytes.Equal(dump, dumpOut) {
		t.Errorf("the dump came back as %d bytes, want %d", len(dump), len(dumpOut))
	}
}

// TestStandardArchive: an unencrypted archive is a plain gzip tar that the
// real tar reads, with the manifest first.
func TestStandardArchive(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("tar"); err != nil {
		t.Fatal("this test needs tar")
	}
	ctx := context.Background()
	data := t.TempDir()
	makeTree(t, data)
	dest := newDir(t)
	m, err := Create(ctx, dest, testManifest("db", "1"), Input{
		Paths:   []string{"/data"},
		CopyOut: copyOutDirs(map[string]string{"/data": data}),
		Dump:    func(_ context.Context, w io.Writer) error { _, err := io.WriteString(w, "dump\n"); return err },
	})
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("tar", "tzf", archivePath(dest, m)).CombinedOutput()
	if err != nil {
		t.Fatalf("tar tzf: %v\n%s", err, out)
	}
	listed := strings.Fields(string(out))
	if len(listed) == 0 || listed[0] != manifestEntry {
		t.Errorf("tar tzf lists %q first, want %s", listed, manifestEntry)
	}
	for _, want := range []string{"data/data/", "data/data/config.conf", "data/data/base/1/2619", "data/data/pg_notify/", "data/data/current.conf", "command.out"} {
		if !slices.Contains(listed, want) {
			t.Errorf("tar tzf does not list %s; it lists %q", want, listed)
		}
	}
	// (tarDir's tar.Writer rounds modification times, maybe into the
	// future, of which tar warns.)
	x := t.TempDir()
	if out, err := exec.Command("tar", "--warning=no-timestamp", "-C", x, "-xzf", archivePath(dest, m)).CombinedOutput(); err != nil || len(out) != 0 {
		t.Fatalf("tar xzf: %v\n%q", err, out)
	}
	sameTree(t, snapshot(t, data), snapshot(t, filepath.Join(x, "data", "data")))
}

// TestGNUTarStreams: providers may copy out with a real tar, which pads
// its stream past the end-of-archive blocks and writes hard links; a
// real tar then copies the path back in.
func TestGNUTarStreams(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("tar"); err != nil {
		t.Fatal("this test needs tar")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	data := t.TempDir()
	makeTree(t, data)
	if err := os.Link(filepath.Join(data, "config.conf"), filepath.Join(data, "base", "hardlink.conf")); err != nil {
		t.Fatal(err)
	}
	dest := newDir(t)
	m, err := Create(ctx, dest, testManifest("db", "1"), Input{
		Paths: []string{"/data", "/data2"},
		CopyOut: func(ctx context.Context, _ string, w io.Writer) error {
			cmd := exec.CommandContext(ctx, "tar", "-C", data, "-cf", "-", ".")
			cmd.Stdout = w
			return cmd.Run()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if m.Paths[0].Files != 5 || m.Paths[1].Files != 5 {
		t.Errorf("manifest paths %+v, want 5 files each (the hard link is not one)", m.Paths)
	}
	l, err := Fetch(ctx, dest, m, "")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	root := t.TempDir()
	err = l.Extract(ctx, func(ctx context.Context, p string, r io.Reader) error {
		dir := filepath.Join(root, p)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		cmd := exec.CommandContext(ctx, "tar", "-C", dir, "-xf", "-")
		cmd.Stdin = r
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := snapshot(t, data)
	sameTree(t, want, snapshot(t, filepath.Join(root, "data")))
	sameTree(t, want, snapshot(t, filepath.Join(root, "data2")))
	a, _ := os.Stat(filepath.Join(root, "data", "config.conf"))
	b, _ := os.Stat(filepath.Join(root, "data", "base", "hardlink.conf"))
	if a == nil || b == nil || !os.SameFile(a, b) {
		t.Errorf("the hard link is not restored as one")
	}

	// The real tar extracts the archive's hard links too: they name their
	// target inside the archive.
	x := t.TempDir()
	if out, err := exec.Command("tar", "-C", x, "-xzf", archivePath(dest, m)).CombinedOutput(); err != nil || len(out) != 0 {
		t.Fatalf("tar xzf: %v\n%q", err, out)
	}
	sameTree(t, want, snapshot(t, filepath.Join(x, "data", "data2")))
}

// TestOverlappingPaths: entries go back to the path they were copied out
// of, also when one data path is inside another.
func TestOverlappingPaths(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	outer, inner := t.TempDir(), t.TempDir()
	// The outer path has a directory where the inner one is, as a
	// mount point has.
	for name, content := range map[string]string{
		filepath.Join(outer, "outer.txt"):    "outer",
		filepath.Join(outer, "sub", "x.txt"): "outer's sub",
		filepath.Join(outer, "z.txt"):        "after sub",
		filepath.Join(inner, "inner.txt"):    "inner",
		filepath.Join(inner, "sub", "y.txt"): "inner's sub",
	} {
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dest := newDir(t)
	for _, paths := range [][]string{{"/data", "/data/sub"}, {"/data/sub", "/data"}} {
		m, err := Create(ctx, dest, testManifest("db", "1"), Input{
			Paths:   paths,
			CopyOut: copyOutDirs(map[string]string{"/data": outer, "/data/sub": inner}),
		})
		if err != nil {
			t.Fatal(err)
		}
		dirs, _ := restoreInto(t, dest, m, "", t.TempDir())
		sameTree(t, snapshot(t, outer), snapshot(t, dirs["/data"]))
		sameTree(t, snapshot(t, inner), snapshot(t, dirs["/data/sub"]))
	}
}

func TestDamagedArchive(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		damage func(raw []byte) []byte
	}{
		{"one byte flipped", func(raw []byte) []byte { raw[len(raw)/2] ^= 0x01; return raw }},
		{"truncated", func(raw []byte) []byte { return raw[:len(raw)-100] }},
		{"empty", func(raw []byte) []byte { return nil }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			data := t.TempDir()
			makeTree(t, data)
			dest := newDir(t)
			m, err := Create(ctx, dest, testManifest("db", "1"), Input{Paths: []string{"/data"}, CopyOut: copyOutDirs(map[string]string{"/data": data})})
			if err != nil {
				t.Fatal(err)
			}
			p := archivePath(dest, m)
			raw, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, c.damage(raw), 0o600); err != nil {
				t.Fatal(err)
			}
			var damaged *DamagedError
			l, err := Fetch(ctx, dest, m, "")
			if !errors.As(err, &damaged) {
				if l != nil {
					l.Close()
				}
				t.Errorf("Fetch of a damaged archive: %v, want a *DamagedError", err)
			} else if damaged.Want != m.SHA256 || damaged.Got == m.SHA256 || !strings.Contains(err.Error(), m.Archive) {
				t.Errorf("Fetch: %+v", damaged)
			}
			if err := Verify(ctx, dest, m); !errors.As(err, &damaged) {
				t.Errorf("Verify of a damaged archive: %v, want a *DamagedError", err)
			}
		})
	}
}

func TestMissingArchive(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dest := newDir(t)
	m, err := Create(ctx, dest, testManifest("db", "1"), Input{Paths: []string{"/data"}, CopyOut: copyOutDirs(map[string]string{"/data": t.TempDir()})})
	if err != nil {
		t.Fatal(err)
	}
	if err := dest.Delete(ctx, m.Archive); err != nil {
		t.Fatal(err)
	}
	if _, err := Fetch(ctx, dest, m, ""); !errors.Is(err, ErrNotExist) {
		t.Errorf("Fetch of a missing archive: %v, want ErrNotExist", err)
	}
	if err := Verify(ctx, dest, m); !errors.Is(err, ErrNotExist) {
		t.Errorf("Verify of a missing archive: %v, want ErrNotExist", err)
	}
}

func TestEncrypted(t *testing.T) {
	t.Parallel()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	other, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name      string
		key       string
		wrongKeys []string
	}{
		{"passphrase", "correct horse battery staple", []string{"correct horse battery stable", other.String()}},
		{"age identity", id.String(), []string{other.String(), "a passphrase"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			data := t.TempDir()
			blob := makeTree(t, data)
			dest := newDir(t)
			dumpOut := []byte("INSERT INTO secrets VALUES ('the dump in clear');\n")
			m, err := Create(ctx, dest, testManifest("db", "1"), Input{
				Paths:   []string{"/data"},
				CopyOut: copyOutDirs(map[string]string{"/data": data}),
				Dump:    func(_ context.Context, w io.Writer) error { _, err := w.Write(dumpOut); return err },
				Key:     c.key,
			})
			if err != nil {
				t.Fatal(err)
			}
			if !m.Encrypted || m.Archive != "db/1.tar.gz.age" {
				t.Errorf("manifest encrypted %v, archive %q", m.Encrypted, m.Archive)
			}
			raw, err := os.ReadFile(archivePath(dest, m))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(raw, []byte("age-encryption.org/v1\n")) {
				t.Errorf("the archive does not start as an age file: %q", raw[:min(len(raw), 40)])
			}
			// Neither the compressed stream nor what it holds is in the
			// archive in clear.
			dec, err := decrypter(bytes.NewReader(raw), c.key)
			if err != nil {
				t.Fatal(err)
			}
			gz, err := io.ReadAll(dec)
			if err != nil {
				t.Fatal(err)
			}
			zr, err := gzip.NewReader(bytes.NewReader(gz))
			if err != nil {
				t.Fatal(err)
			}
			tarred, err := io.ReadAll(zr)
			if err != nil {
				t.Fatal(err)
			}
			plain := [][]byte{blob[:64], blob[len(blob)-64:], []byte(manifestEntry), dumpOut, []byte(c.key)}
			for _, b := range [][]byte{gz, tarred} {
				for _, at := range []int{0, 100, len(b) / 3, len(b) / 2, len(b) - 64} {
					plain = append(plain, b[at:at+64])
				}
			}
			for _, p := range plain {
				if bytes.Contains(raw, p) {
					t.Errorf("the encrypted archive contains %q in clear", p[:min(len(p), 20)])
				}
			}
			manifest, err := os.ReadFile(filepath.Join(dest.root, "db", "1.json"))
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(manifest, []byte(c.key)) {
				t.Errorf("the manifest holds the key:\n%s", manifest)
			}

			stored, err := ReadManifest(ctx, dest, ManifestName("db", "1"))
			if err != nil {
				t.Fatal(err)
			}
			dirs, dump := restoreInto(t, dest, stored, c.key, t.TempDir())
			sameTree(t, snapshot(t, data), snapshot(t, dirs["/data"]))
			if !bytes.Equal(dump, dumpOut) {
				t.Errorf("dump = %q, want %q", dump, dumpOut)
			}

			if _, err := Fetch(ctx, dest, stored, ""); err == nil {
				t.Error("Fetch of an encrypted archive without a key succeeded")
			}
			for _, wrong := range c.wrongKeys {
				l, err := Fetch(ctx, dest, stored, wrong)
				if err == nil {
					called := false
					err = l.Extract(ctx, func(context.Context, string, io.Reader) error { called = true; return nil }, nil)
					l.Close()
					if called {
						t.Errorf("with a wrong key, Extract gave a path")
					}
				}
				if err == nil {
					t.Errorf("with a wrong key, the archive was read")
					continue
				}
				t.Logf("with a wrong key: %v", err)
				for _, k := range []string{c.key, wrong} {
					if strings.Contains(err.Error(), k) {
						t.Errorf("the error names a key: %v", err)
					}
				}
				if k := strings.TrimPrefix(wrong, "AGE-SECRET-KEY-1"); k != wrong && strings.Contains(err.Error(), k[:20]) {
					t.Errorf("the error names part of a key: %v", err)
				}
			}
		})
	}
}

// TestUnencryptedWithKey: a backup block that gains an encryption_key
// still restores the backups made before it had one.
func TestUnencryptedWithKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	data := t.TempDir()
	makeTree(t, data)
	dest := newDir(t)
	m, err := Create(ctx, dest, testManifest("db", "1"), Input{Paths: []string{"/data"}, CopyOut: copyOutDirs(map[string]string{"/data": data})})
	if err != nil {
		t.Fatal(err)
	}
	dirs, _ := restoreInto(t, dest, m, "a key added later", t.TempDir())
	sameTree(t, snapshot(t, data), snapshot(t, dirs["/data"]))
}

func TestBadKey(t *testing.T) {
	t.Parallel()
	key := "AGE-SECRET-KEY-1NOTVALIDBUTLOOKSLIKEONE"
	_, err := Create(context.Background(), newDir(t), testManifest("db", "1"), Input{Paths: []string{"/data"}, CopyOut: copyOutDirs(map[string]string{"/data": t.TempDir()}), Key: key})
	if err == nil {
		t.Fatal("Create with a malformed age identity succeeded")
	}
	if strings.Contains(err.Error(), "NOTVALID") {
		t.Errorf("the error names the key: %v", err)
	}
}

// failAfter passes n bytes to w, then fails with err.
type failAfter struct {
	w   io.Writer
	n   int
	err error
}

func (f *failAfter) Write(p []byte) (int, error) {
	if len(p) > f.n {
		k, _ := f.w.Write(p[:f.n])
		f.n = 0
		return k, f.err
	}
	f.n -= len(p)
	return f.w.Write(p)
}

func TestCreateFails(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	makeTree(t, data)
	boom := errors.New("the volume went away")
	good := copyOutDirs(map[string]string{"/data": data, "/conf": data})
	okDump := func(_ context.Context, w io.Writer) error { _, err := io.WriteString(w, "dump"); return err }
	cases := []struct {
		name string
		in   Input
	}{
		{"copy out fails mid-stream", Input{
			Paths: []string{"/data"},
			CopyOut: func(ctx context.Context, p string, w io.Writer) error {
				if err := tarDir(data, &failAfter{w: w, n: 100 << 10, err: boom}); err != nil {
					return err
				}
				return errors.New("the stream should have failed")
			},
		}},
		{"copy out fails after a whole stream", Input{
			Paths: []string{"/data"},
			CopyOut: func(ctx context.Context, p string, w io.Writer) error {
				if err := tarDir(data, w); err != nil {
					return err
				}
				return boom
			},
		}},
		{"copy out fails at once", Input{
			Paths:   []string{"/data"},
			CopyOut: func(context.Context, string, io.Writer) error { return boom },
		}},
		{"second path fails", Input{
			Paths: []string{"/conf", "/data"},
			CopyOut: func(ctx context.Context, p string, w io.Writer) error {
				if p == "/data" {
					return tarDir(data, &failAfter{w: w, n: 1000, err: boom})
				}
				return good(ctx, p, w)
			},
			Dump: okDump,
		}},
		{"copy out writes garbage", Input{
			Paths: []string{"/data"},
			CopyOut: func(_ context.Context, _ string, w io.Writer) error {
				_, err := w.Write(bytes.Repeat([]byte("not a tar stream"), 100))
				return err
			},
		}},
		{"dump fails", Input{
			Paths:   []string{"/data"},
			CopyOut: good,
			Dump: func(_ context.Context, w io.Writer) error {
				_, _ = io.WriteString(w, "half a dump")
				return boom
			},
		}},
		{"dump fails, encrypted", Input{
			Dump: func(_ context.Context, w io.Writer) error { return boom },
			Key:  "passphrase",
		}},
		{"copy out fails, encrypted", Input{
			Paths: []string{"/data"},
			CopyOut: func(ctx context.Context, p string, w io.Writer) error {
				return tarDir(data, &failAfter{w: w, n: 200 << 10, err: boom})
			},
			Key: "passphrase",
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			dest := newDir(t)
			m, err := Create(ctx, dest, testManifest("db", "1"), c.in)
			if err == nil {
				t.Fatalf("Create succeeded: %+v", m)
			}
			if c.name != "copy out writes garbage" && !errors.Is(err, boom) {
				t.Errorf("Create: %v, want it to wrap %v", err, boom)
			}
			names, err := dest.List(ctx, "")
			if err != nil {
				t.Fatal(err)
			}
			if len(names) != 0 {
				t.Errorf("after a failed Create the destination lists %q", names)
			}
			if found, errs := Sync(ctx, dest, ""); len(found) != 0 || len(errs) != 0 {
				t.Errorf("Sync after a failed Create: %v, %v", found, errs)
			}
			left, _ := os.ReadDir(filepath.Join(dest.root, "db"))
			if len(left) != 0 {
				t.Errorf("after a failed Create the directory holds %v", left)
			}
		})
	}
}

// brokenDest fails its Put of the archive or of the manifest.
type brokenDest struct {
	*Dir
	failOn string
}

func (b brokenDest) Put(ctx context.Context, name string, r io.Reader) error {
	if strings.HasSuffix(name, b.failOn) {
		_, _ = io.CopyN(io.Discard, r, 1000)
		return errors.New("the disk is full")
	}
	return b.Dir.Put(ctx, name, r)
}

func TestCreateDestinationFails(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	makeTree(t, data)
	for _, failOn := range []string{".tar.gz", ".json"} {
		t.Run(failOn, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			dest := brokenDest{newDir(t), failOn}
			_, err := Create(ctx, dest, testManifest("db", "1"), Input{Paths: []string{"/data"}, CopyOut: copyOutDirs(map[string]string{"/data": data})})
			if err == nil || !strings.Contains(err.Error(), "the disk is full") {
				t.Errorf("Create: %v, want the destination's error", err)
			}
			if names, _ := dest.List(ctx, ""); len(names) != 0 {
				t.Errorf("after a failed Create the destination lists %q", names)
			}
		})
	}
}

func TestCreateCancelled(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	makeTree(t, data)
	ctx, cancel := context.WithCancel(context.Background())
	dest := newDir(t)
	_, err := Create(ctx, dest, testManifest("db", "1"), Input{
		Paths: []string{"/data"},
		CopyOut: func(ctx context.Context, p string, w io.Writer) error {
			cancel()
			return tarDir(data, w)
		},
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Create: %v, want context.Canceled", err)
	}
	if names, _ := dest.List(context.Background(), ""); len(names) != 0 {
		t.Errorf("after a cancelled Create the destination lists %q", names)
	}
}

// TestExtractFails: a CopyIn that fails fails the restore, and the paths
// after it are not given.
func TestExtractFails(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	data := t.TempDir()
	makeTree(t, data)
	dest := newDir(t)
	m, err := Create(ctx, dest, testManifest("db", "1"), Input{
		Paths:   []string{"/a", "/b"},
		CopyOut: copyOutDirs(map[string]string{"/a": data, "/b": data}),
		Dump:    func(_ context.Context, w io.Writer) error { _, err := io.WriteString(w, "dump"); return err },
	})
	if err != nil {
		t.Fatal(err)
	}
	l, err := Fetch(ctx, dest, m, "")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	boom := errors.New("no space left on the volume")
	var given []string
	err = l.Extract(ctx, func(_ context.Context, p string, r io.Reader) error {
		given = append(given, p)
		_, _ = io.CopyN(io.Discard, r, 1000)
		return boom
	}, func(context.Context, io.Reader) error { t.Error("the dump was given after a failed path"); return nil })
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "/a") {
		t.Errorf("Extract: %v, want the error of /a", err)
	}
	if !slices.Equal(given, []string{"/a"}) {
		t.Errorf("Extract gave %q, want only /a", given)
	}

	// A Local reads any number of times; a dump that fails fails it.
	err = l.Extract(ctx, func(_ context.Context, p string, r io.Reader) error {
		_, err := io.Copy(io.Discard, r)
		return err
	}, func(context.Context, io.Reader) error { return boom })
	if !errors.Is(err, boom) {
		t.Errorf("Extract with a failing dump: %v", err)
	}
}

func TestSync(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dest := newDir(t)
	data := t.TempDir()
	makeTree(t, data)
	in := Input{Paths: []string{"/data"}, CopyOut: copyOutDirs(map[string]string{"/data": data})}
	for _, b := range []struct{ server, id string }{{"db", "1"}, {"db", "2"}, {"web", "1"}} {
		if _, err := Create(ctx, dest, testManifest(b.server, b.id), in); err != nil {
			t.Fatal(err)
		}
	}
	// An archive without its manifest (written by hand, or by a Create
	// that died before its manifest), a manifest that is not one, one that
	// names another backup and a Put that never finished.
	raw, err := os.ReadFile(filepath.Join(dest.root, "db", "1.tar.gz"))
	if err != nil {
		t.Fatal(err)
	}
	movedRaw := fmt.Sprintf(`{"format":1,"id":"4","server":"db","archive":"db/4.tar.gz","sha256":"%x"}`, sha256.Sum256(raw))
	for name, content := range map[string]string{
		"db/3.tar.gz":         string(raw),
		"db/garbage.json":     "{not json",
		"db/empty.json":       "{}",
		"db/5.json":           movedRaw,
		"db/.tmp-6.json-1234": "{",
		"db/notes.txt":        "a note",
		"db/deeper/7.json":    "{",
	} {
		p := filepath.Join(dest.root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	ids := func(found []*Manifest) []string {
		var out []string
		for _, m := range found {
			out = append(out, m.Server+"/"+m.ID)
		}
		return out
	}
	found, errs := Sync(ctx, dest, "db")
	if got, want := ids(found), []string{"db/1", "db/2"}; !slices.Equal(got, want) {
		t.Errorf("Sync(db) found %q, want %q", got, want)
	}
	if len(errs) != 3 {
		t.Errorf("Sync(db) reported %d errors, want 3 (garbage, empty, 5): %v", len(errs), errs)
	}
	for _, name := range []string{"garbage.json", "empty.json", "5.json"} {
		if !slices.ContainsFunc(errs, func(err error) bool { return strings.Contains(err.Error(), "db/"+name) }) {
			t.Errorf("Sync(db) reported no error for db/%s: %v", name, errs)
		}
	}
	for _, m := range found {
		if err := Verify(ctx, dest, m); err != nil {
			t.Errorf("Verify %s: %v", m.ID, err)
		}
	}
	found, errs = Sync(ctx, dest, "")
	if got, want := ids(found), []string{"db/1", "db/2", "web/1"}; !slices.Equal(got, want) {
		t.Errorf("Sync found %q, want %q", got, want)
	}
	if len(errs) != 3 {
		t.Errorf("Sync reported %v", errs)
	}
	if found, errs := Sync(ctx, dest, "cache"); len(found) != 0 || len(errs) != 0 {
		t.Errorf("Sync(cache) = %v, %v", found, errs)
	}
	empty, _ := NewDir(filepath.Join(t.TempDir(), "none"))
	if found, errs := Sync(ctx, empty, ""); len(found) != 0 || len(errs) != 0 {
		t.Errorf("Sync of a destination not yet made = %v, %v", found, errs)
	}
}

// TestManifestHoldsNoKey: neither the manifest object nor the archive's
// own manifest entry holds the key.
func TestManifestHoldsNoKey(t *testing.T) {
	t.Parallel()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"s3cr3t-passphrase-do-not-store", id.String()} {
		ctx := context.Background()
		dest := newDir(t)
		m, err := Create(ctx, dest, testManifest("db", "1"), Input{
			Dump: func(_ context.Context, w io.Writer) error { _, err := io.WriteString(w, "dump"); return err },
			Key:  key,
		})
		if err != nil {
			t.Fatal(err)
		}
		secret := key[len(key)/2:]
		for _, name := range []string{ManifestName("db", "1"), m.Archive} {
			raw, err := os.ReadFile(filepath.Join(dest.root, filepath.FromSlash(name)))
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(raw, []byte(secret)) {
				t.Errorf("%s holds the key", name)
			}
		}
		l, err := Fetch(ctx, dest, m, key)
		if err != nil {
			t.Fatal(err)
		}
		// The archive's own manifest entry, decrypted.
		if _, err := l.file.Seek(0, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		dec, err := decrypter(l.file, key)
		if err != nil {
			t.Fatal(err)
		}
		var plain bytes.Buffer
		zr, err := gzip.NewReader(dec)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(&plain, zr); err != nil {
			t.Fatal(err)
		}
		l.Close()
		if !bytes.Contains(plain.Bytes(), []byte(manifestEntry)) {
			t.Fatal("the decrypted archive has no manifest entry")
		}
		if bytes.Contains(plain.Bytes(), []byte(secret)) {
			t.Error("the decrypted archive holds the key")
		}
	}
}

// TestExtractBrokenStream: an archive whose sha256 matches its manifest
// but whose tar stream breaks off (made so before it was hashed) fails
// the restore, and the path being read sees the error, not an end: a
// CopyIn must not take half a path for all of it.
func TestExtractBrokenStream(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	data := t.TempDir()
	makeTree(t, data)
	dest := newDir(t)
	m, err := Create(ctx, dest, testManifest("db", "1"), Input{Paths: []string{"/data"}, CopyOut: copyOutDirs(map[string]string{"/data": data})})
	if err != nil {
		t.Fatal(err)
	}
	p := archivePath(dest, m)
	raw, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	tarred, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	for _, cut := range []struct {
		name  string
		entry string
		at    int
	}{
		{"inside a header", "data/data/run.sh", 100},
		{"inside a file", "data/data/base/1/2619", 512 + 1000},
	} {
		t.Run(cut.name, func(t *testing.T) {
			at := bytes.Index(tarred, []byte(cut.entry+"\x00"))
			if at < 0 || at%512 != 0 {
				t.Fatalf("no header of %s", cut.entry)
			}
			var buf bytes.Buffer
			zw := gzip.NewWriter(&buf)
			zw.Write(tarred[:at+cut.at])
			zw.Close()
			broken := *m
			sum := sha256.Sum256(buf.Bytes())
			broken.Archive, broken.Size, broken.SHA256 = "db/broken.tar.gz", int64(buf.Len()), hex.EncodeToString(sum[:])
			if err := dest.Put(ctx, broken.Archive, &buf); err != nil {
				t.Fatal(err)
			}
			l, err := Fetch(ctx, dest, &broken, "")
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			var readErr error
			err = l.Extract(ctx, func(_ context.Context, _ string, r io.Reader) error {
				readErr = untar(t.TempDir(), r)
				return readErr
			}, nil)
			if err == nil {
				t.Error("Extract of a broken stream succeeded")
			}
			if readErr == nil {
				t.Errorf("the path's reader ended cleanly; Extract: %v", err)
			}
		})
	}
}
