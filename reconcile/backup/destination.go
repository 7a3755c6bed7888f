package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/tendhq/tend/spec"
)

// ErrNotExist is returned (wrapped) by Destination.Open for a name that is
// not there.
var ErrNotExist = errors.New("no such backup object")

// ErrReadOnly is returned by Put and Delete of a read-only destination.
var ErrReadOnly = errors.New("the destination is read-only")

// Destination is where archives and their manifests are kept: a directory
// or an object store. Names are slash-separated and relative to the
// destination (SERVER/ID.tar.gz).
type Destination interface {
	// URL names the destination for people and the catalog; it never
	// holds a credential.
	URL() string
	// Put stores what r yields under name, atomically: until Put returns
	// nil, nothing is visible under name (a temporary name and a rename,
	// or one object store upload). A failed or interrupted Put leaves no
	// object under name.
	Put(ctx context.Context, name string, r io.Reader) error
	// Open reads the object name; a missing one is an error wrapping
	// ErrNotExist.
	Open(ctx context.Context, name string) (io.ReadCloser, error)
	// List returns the names of the objects under prefix ("" for all),
	// sorted. Temporary objects of unfinished Puts are not listed.
	List(ctx context.Context, prefix string) ([]string, error)
	// Delete removes name; a missing name is not an error.
	Delete(ctx context.Context, name string) error
}

// Resolve returns the destination a backup block names: destination, or
// STATE_DIR/backups when it names none. An s3:// destination is reached with
// the block's s3 settings; a read_only block gives a destination that
// refuses writes.
func Resolve(b *spec.Backup, stateDir string) (Destination, error) {
	d, err := open(b.Destination, b.S3, stateDir)
	if err != nil {
		return nil, err
	}
	if b.ReadOnly {
		d = ReadOnly(d)
	}
	return d, nil
}

// Parse returns the destination a URL names (an absolute directory, a
// file:// or an s3:// URL), for commands given one on the command line. An
// s3:// URL takes its endpoint and credentials from the environment
// (TEND_S3_ENDPOINT, AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY).
func Parse(raw string) (Destination, error) {
	if raw == "" {
		return nil, errors.New("no destination given")
	}
	var s3 *spec.BackupS3
	if strings.HasPrefix(raw, "s3://") {
		s3 = &spec.BackupS3{Endpoint: os.Getenv("TEND_S3_ENDPOINT"), Region: os.Getenv("AWS_REGION"), PathStyle: os.Getenv("TEND_S3_PATH_STYLE") == "true"}
		if s3.Region == "" {
			s3.Region = "us-east-1"
		}
	}
	return open(raw, s3, "")
}

func open(raw string, s3 *spec.BackupS3, stateDir string) (Destination, error) {
	switch {
	case raw == "":
		if stateDir == "" {
			return nil, errors.New("no destination: the backup block names none and there is no state directory")
		}
		return NewDir(filepath.Join(stateDir, "backups"))
	case strings.HasPrefix(raw, "file://"):
		u, err := url.Parse(raw)
		if err != nil || !path.IsAbs(u.Path) {
			return nil, fmt.Errorf("%q is not a file:// URL of an absolute directory", raw)
		}
		return NewDir(filepath.FromSlash(u.Path))
	case strings.HasPrefix(raw, "s3://"):
		return newS3(raw, s3)
	case filepath.IsAbs(raw):
		return NewDir(raw)
	}
	return nil, fmt.Errorf("%q is not a destination: give an absolute directory, a file:// URL or an s3://BUCKET/PREFIX URL", raw)
}

// Dir is a destination in a directory of this machine.
type Dir struct{ root string }

var _ Destination = (*Dir)(nil)

// NewDir returns the destination in root, which is created (mode 0700)
// on the first Put.
func NewDir(root string) (*Dir, error) {
	if !filepath.IsAbs(root) {
		return nil, fmt.Errorf("backup directory %q is not absolute", root)
	}
	return &Dir{root: filepath.Clean(root)}, nil
}

// URL implements Destination.
func (d *Dir) URL() string { return "file://" + filepath.ToSlash(d.root) }

// tmpPrefix starts the names of unfinished Puts; List skips them and Put
// removes those an earlier, killed tend left behind.
const tmpPrefix = ".tmp-"

func (d *Dir) path(name string) (string, error) {
	clean := path.Clean(name)
	if name == "" || clean != name || path.IsAbs(name) || clean == ".." || strings.HasPrefix(clean, "../") {
		return "", fmt.Errorf("bad backup object name %q", name)
	}
	return filepath.Join(d.root, filepath.FromSlash(name)), nil
}

// Put implements Destination: a temporary file in the same directory,
// synced, then renamed over name.
func (d *Dir) Put(ctx context.Context, name string, r io.Reader) error {
	p, err := d.path(name)
	if err != nil {
		return err
	}
	dir := filepath.Dir(p)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, tmpPrefix+filepath.Base(p)+"-")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // a no-op after the rename
	_, err = io.Copy(f, ctxReader{ctx, r})
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Rename(f.Name(), p); err != nil {
		return err
	}
	if df, err := os.Open(dir); err == nil {
		_ = df.Sync()
		df.Close()
	}
	return nil
}

// Open implements Destination.
func (d *Dir) Open(_ context.Context, name string) (io.ReadCloser, error) {
	p, err := d.path(name)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s/%s: %w", d.URL(), name, ErrNotExist)
	}
	return f, err
}

// List implements Destination.
func (d *Dir) List(_ context.Context, prefix string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(d.root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if e.IsDir() || !e.Type().IsRegular() || strings.HasPrefix(e.Name(), tmpPrefix) {
			return nil
		}
		rel, _ := filepath.Rel(d.root, p)
		rel = filepath.ToSlash(rel)
		if strings.HasPrefix(rel, prefix) {
			out = append(out, rel)
		}
		return nil
	})
	sort.Strings(out)
	return out, err
}

// Delete implements Destination.
func (d *Dir) Delete(_ context.Context, name string) error {
	p, err := d.path(name)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// CleanTemporary removes what Puts killed half way left in the
// directory of server, older than any Put still running could be.
func (d *Dir) CleanTemporary(server string) {
	entries, _ := os.ReadDir(filepath.Join(d.root, server))
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), tmpPrefix) {
			_ = os.Remove(filepath.Join(d.root, server, e.Name()))
		}
	}
}

type readOnly struct{ Destination }

// ReadOnly wraps d so that Put and Delete fail with ErrReadOnly.
func ReadOnly(d Destination) Destination { return readOnly{d} }

func (readOnly) Put(context.Context, string, io.Reader) error {
	return ErrReadOnly
}

func (readOnly) Delete(context.Context, string) error { return ErrReadOnly }

// IsReadOnly reports whether d refuses writes.
func IsReadOnly(d Destination) bool {
	_, ok := d.(readOnly)
	return ok
}

// ctxReader stops a copy when ctx ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
