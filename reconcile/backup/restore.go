package backup

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/klauspost/compress/gzip"
)

// DamagedError says an archive is not what its manifest recorded.
type DamagedError struct {
	Archive, Want, Got string
	Size               int64
}

func (e *DamagedError) Error() string {
	return fmt.Sprintf("the archive %s is damaged: its sha256 is %s (%d bytes), the catalog recorded %s", e.Archive, e.Got, e.Size, e.Want)
}

// Verify reads the archive of m from dest and checks its size and sha256.
func Verify(ctx context.Context, dest Destination, m *Manifest) error {
	rc, err := dest.Open(ctx, m.Archive)
	if err != nil {
		return err
	}
	defer rc.Close()
	h := &countingHash{h: sha256.New()}
	if _, err := io.CopyBuffer(h, ctxReader{ctx, rc}, make([]byte, pipeSize)); err != nil {
		return fmt.Errorf("reading %s: %w", m.Archive, err)
	}
	return check(m, h)
}

func check(m *Manifest, h *countingHash) error {
	got := hex.EncodeToString(h.h.Sum(nil))
	if got != m.SHA256 || h.n != m.Size {
		return &DamagedError{Archive: m.Archive, Want: m.SHA256, Got: got, Size: h.n}
	}
	return nil
}

// Local is an archive fetched to this machine and checked against its
// manifest, ready to be read any number of times.
type Local struct {
	Manifest *Manifest
	file     *os.File
	key      string
}

// Fetch copies the archive of m from dest to a temporary file and checks
// its sha256 and size; a damaged archive is refused (*DamagedError) before
// anything is read from it. Close removes the file.
func Fetch(ctx context.Context, dest Destination, m *Manifest, key string) (*Local, error) {
	if m.Encrypted && key == "" {
		return nil, fmt.Errorf("the archive %s is encrypted, and the backup block gives no encryption_key", m.Archive)
	}
	if !m.Encrypted {
		key = "" // a backup made before the block had a key
	}
	rc, err := dest.Open(ctx, m.Archive)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	f, err := os.CreateTemp("", "tend-restore-*")
	if err != nil {
		return nil, err
	}
	_ = os.Remove(f.Name()) // unlinked: gone with the process, whatever happens
	h := &countingHash{h: sha256.New()}
	if _, err := io.CopyBuffer(io.MultiWriter(f, h), ctxReader{ctx, rc}, make([]byte, pipeSize)); err != nil {
		f.Close()
		return nil, fmt.Errorf("reading %s: %w", m.Archive, err)
	}
	if err := check(m, h); err != nil {
		f.Close()
		return nil, err
	}
	return &Local{Manifest: m, file: f, key: key}, nil
}

// Close removes the local copy.
func (l *Local) Close() error { return l.file.Close() }

// Extract reads the archive: each data path's content goes to data as a
// tar stream with names relative to the path (what CopyIn takes), and the
// dump's output to dump (when the archive has one and dump is not nil).
// Paths are given in the order they were backed up. When data or dump
// fails, or the archive cannot be read to its end, Extract stops with that
// error, and the stream data was reading ends with an error too.
func (l *Local) Extract(ctx context.Context, data func(ctx context.Context, path string, r io.Reader) error, dump func(ctx context.Context, r io.Reader) error) error {
	if _, err := l.file.Seek(0, io.SeekStart); err != nil {
		return err
	}
	dec, err := decrypter(bufio.NewReaderSize(l.file, pipeSize), l.key)
	if err != nil {
		return err
	}
	if l.key != "" {
		dec = bufio.NewReaderSize(dec, pipeSize)
	}
	zr, err := gzip.NewReader(dec)
	if err != nil {
		return fmt.Errorf("the archive %s is not gzip: %w", l.Manifest.Archive, err)
	}
	defer zr.Close()
	tr := tar.NewReader(ctxReader{ctx, zr})
	paths := map[string]bool{}
	for _, p := range l.Manifest.Paths {
		paths[p.Path] = true
	}
	buf := make([]byte, copyBufSize)
	var cur *pathStream
	finish := func() error {
		if cur == nil {
			return nil
		}
		err := cur.close()
		cur = nil
		return err
	}
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			err = fmt.Errorf("reading the archive %s: %w", l.Manifest.Archive, err)
			if cur != nil {
				return cur.fail(err)
			}
			return err
		}
		switch {
		case hdr.Name == manifestEntry:
		case hdr.Name == commandEntry:
			if err := finish(); err != nil {
				return err
			}
			if dump != nil {
				if err := dump(ctx, tr); err != nil {
					return err
				}
			}
		default:
			p := entryPath(hdr, cur, paths)
			if p == "" {
				continue // not of this format's entries; newer tends may add some
			}
			if cur == nil || cur.path != p || isPathStart(hdr) {
				if err := finish(); err != nil {
					return err
				}
				cur = startPath(ctx, p, data)
			}
			rel := strings.TrimPrefix(hdr.Name, cur.prefix)
			if rel == "" {
				continue // the path's own directory
			}
			hdr.Name = rel
			if hdr.Typeflag == tar.TypeLink {
				hdr.Linkname = strings.TrimPrefix(hdr.Linkname, cur.prefix)
			}
			if err := cur.tw.WriteHeader(hdr); err != nil {
				return cur.fail(err)
			}
			if _, err := io.CopyBuffer(cur.tw, tr, buf); err != nil {
				return cur.fail(err)
			}
		}
	}
	// The rest of the stream (the gzip trailer, the last age chunk) is
	// read too, so that its checks run before the last path is closed.
	if _, err := io.Copy(io.Discard, zr); err != nil {
		err = fmt.Errorf("reading the archive %s: %w", l.Manifest.Archive, err)
		if cur != nil {
			return cur.fail(err)
		}
		return err
	}
	return finish()
}

// pathMark marks the entry that starts a data path's entries in an
// archive (a pax comment, which tar ignores): it tells where one path's
// entries end when a data path is inside another.
const pathMark = "tend data path "

func isPathStart(hdr *tar.Header) bool {
	return strings.HasPrefix(hdr.PAXRecords["comment"], pathMark)
}

// entryPath is the data path an archive entry belongs to: the one it
// starts, else the current one when the entry is under it, else the one
// whose prefix it has (the longest).
func entryPath(hdr *tar.Header, cur *pathStream, paths map[string]bool) string {
	if isPathStart(hdr) {
		p := strings.TrimPrefix(hdr.PAXRecords["comment"], pathMark)
		if paths[p] && hdr.Name == pathPrefix(p) {
			return p
		}
		return ""
	}
	if cur != nil && strings.HasPrefix(hdr.Name, cur.prefix) {
		return cur.path
	}
	best := ""
	for p := range paths {
		if strings.HasPrefix(hdr.Name, pathPrefix(p)) && len(p) > len(best) {
			best = p
		}
	}
	return best
}

// pathStream feeds one data path's entries to its consumer.
type pathStream struct {
	path   string
	prefix string
	pw     *pipeWriter
	tw     *tar.Writer
	done   chan error
}

func startPath(ctx context.Context, p string, data func(context.Context, string, io.Reader) error) *pathStream {
	pr, pw := newPipe(pipeSize)
	s := &pathStream{path: p, prefix: pathPrefix(p), pw: pw, tw: tar.NewWriter(pw), done: make(chan error, 1)}
	go func() {
		err := data(ctx, p, pr)
		if err != nil {
			pr.CloseWithError(err) // Extract stops at its next write
		} else {
			// What the consumer left unread is drained, so that the
			// writer never blocks.
			_, _ = io.Copy(io.Discard, pr)
		}
		s.done <- err
	}()
	return s
}

func (s *pathStream) close() error {
	err := s.tw.Close()
	s.pw.CloseWithError(err)
	if derr := <-s.done; derr != nil {
		return fmt.Errorf("restoring %s: %w", s.path, derr)
	}
	return err
}

func (s *pathStream) fail(err error) error {
	s.pw.CloseWithError(err)
	if derr := <-s.done; derr != nil && !errors.Is(derr, err) {
		return fmt.Errorf("restoring %s: %w", s.path, derr)
	}
	return fmt.Errorf("restoring %s: %w", s.path, err)
}

// ReadManifest reads the manifest object of a backup.
func ReadManifest(ctx context.Context, dest Destination, name string) (*Manifest, error) {
	rc, err := dest.Open(ctx, name)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	var m Manifest
	if err := json.NewDecoder(io.LimitReader(rc, 4<<20)).Decode(&m); err != nil {
		return nil, fmt.Errorf("%s at %s is not a backup manifest: %w", name, dest.URL(), err)
	}
	if m.Format > FormatVersion {
		return nil, fmt.Errorf("%s at %s has archive format %d; this tend reads up to %d, so upgrade tend", name, dest.URL(), m.Format, FormatVersion)
	}
	if m.ID == "" || m.Server == "" || m.Archive == "" || m.SHA256 == "" {
		return nil, fmt.Errorf("%s at %s is not a complete backup manifest", name, dest.URL())
	}
	return &m, nil
}

// Sync lists every backup whose manifest is at dest (those of server, or
// all when server is ""): how a tend with an empty store finds the backups
// again. Objects that are not manifests are skipped; unreadable manifests
// are reported in errs and skipped.
func Sync(ctx context.Context, dest Destination, server string) (found []*Manifest, errs []error) {
	prefix := ""
	if server != "" {
		prefix = server + "/"
	}
	names, err := dest.List(ctx, prefix)
	if err != nil {
		return nil, []error{err}
	}
	for _, n := range names {
		if !strings.HasSuffix(n, ".json") || strings.Count(n, "/") != 1 {
			continue
		}
		m, err := ReadManifest(ctx, dest, n)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if ManifestName(m.Server, m.ID) != n {
			errs = append(errs, fmt.Errorf("%s at %s names backup %s of %s; skipped", n, dest.URL(), m.ID, m.Server))
			continue
		}
		found = append(found, m)
	}
	return found, errs
}
