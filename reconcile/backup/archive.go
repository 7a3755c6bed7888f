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
	"hash"
	"io"
	"os"
	"path"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"
)

// FormatVersion is the archive layout this tend writes and reads.
const FormatVersion = 1

const (
	manifestEntry = "tend-backup.json"
	dataPrefix    = "data/"
	commandEntry  = "command.out"
)

// Manifest describes one backup. It is the archive's first entry and,
// with Size and SHA256 filled in, the object SERVER/ID.json beside it.
type Manifest struct {
	Format      int       `json:"format"`
	ID          string    `json:"id"`
	Server      string    `json:"server"`
	Version     string    `json:"version"`
	Revision    string    `json:"revision"`              // the source revision (commit) that ran
	RevisionID  int64     `json:"revision_id,omitempty"` // tend's revision the backup belongs to
	SpecHash    string    `json:"spec_hash"`
	Provider    string    `json:"provider"`
	Replica     int       `json:"replica"`
	Trigger     string    `json:"trigger"`
	Paths       []Path    `json:"paths,omitempty"`
	Command     *Dump     `json:"command,omitempty"`
	TendVersion string    `json:"tend_version"`
	CreatedAt   time.Time `json:"created_at"`
	Encrypted   bool      `json:"encrypted,omitempty"`
	// Archive, Size and SHA256 are known once the archive is written: they
	// are in the manifest object, not in the archive's own copy.
	Archive string `json:"archive,omitempty"`
	Size    int64  `json:"size,omitempty"`
	SHA256  string `json:"sha256,omitempty"`
}

// Path is one data path in an archive.
type Path struct {
	Path  string `json:"path"`
	Files int    `json:"files"`
	Bytes int64  `json:"bytes"`
}

// Dump is the dump command's output in an archive.
type Dump struct {
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"`
}

// ArchiveName and ManifestName are where a backup's objects go.
func ArchiveName(server, id string, encrypted bool) string {
	n := server + "/" + id + ".tar.gz"
	if encrypted {
		n += ".age"
	}
	return n
}

// ManifestName is the name of a backup's manifest object.
func ManifestName(server, id string) string { return server + "/" + id + ".json" }

// Input is what a backup reads.
type Input struct {
	// Paths are the data paths, copied out by CopyOut as tar streams
	// with names relative to the path.
	Paths   []string
	CopyOut func(ctx context.Context, path string, w io.Writer) error
	// Dump, when set, writes the dump command's output.
	Dump func(ctx context.Context, w io.Writer) error
	// Key, when set, encrypts the archive (an age identity or a
	// passphrase).
	Key string
}

// Create writes the archive of m.Server with what in yields to dest, then
// its manifest, and returns the manifest as stored. Nothing is visible at
// the destination until the archive is whole; a failure leaves at most an
// archive without a manifest, which Sync ignores and a later Create
// cleans up.
func Create(ctx context.Context, dest Destination, m Manifest, in Input) (*Manifest, error) {
	m.Format = FormatVersion
	m.Encrypted = in.Key != ""
	m.Archive = ArchiveName(m.Server, m.ID, m.Encrypted)
	var dump *os.File
	if in.Dump != nil {
		// A tar entry needs its size first, so the dump is spooled.
		f, d, err := spoolDump(ctx, in.Dump)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		dump, m.Command = f, d
	}
	pr, pw := newPipe(pipeSize)
	counter := &countingHash{h: sha256.New()}
	out := &stickyWriter{w: io.MultiWriter(pw, counter)}
	writeErr := make(chan error, 1)
	go func() {
		err := writeArchive(ctx, out, &m, in, dump)
		pw.CloseWithError(err)
		writeErr <- err
	}()
	putErr := dest.Put(ctx, m.Archive, pr)
	pr.CloseWithError(errDestinationStopped)
	werr := <-writeErr
	switch {
	case putErr != nil && (werr == nil || errors.Is(werr, errDestinationStopped)):
		// The destination failed first; what the writer saw follows from it.
		return nil, fmt.Errorf("writing %s to %s: %w", m.Archive, dest.URL(), putErr)
	case werr != nil:
		return nil, werr
	}
	m.Size, m.SHA256 = counter.n, hex.EncodeToString(counter.h.Sum(nil))
	raw, _ := json.MarshalIndent(m, "", "  ")
	if err := dest.Put(ctx, ManifestName(m.Server, m.ID), strings.NewReader(string(raw)+"\n")); err != nil {
		_ = dest.Delete(context.WithoutCancel(ctx), m.Archive)
		return nil, fmt.Errorf("writing the manifest of %s to %s: %w", m.ID, dest.URL(), err)
	}
	return &m, nil
}

// spoolDump runs the dump into a temporary file that is unlinked at once:
// whatever happens to tend (kill -9 included), the dump, which may hold a
// database's content, leaves no file behind.
func spoolDump(ctx context.Context, dump func(context.Context, io.Writer) error) (*os.File, *Dump, error) {
	f, err := os.CreateTemp("", "tend-dump-*")
	if err != nil {
		return nil, nil, err
	}
	_ = os.Remove(f.Name())
	h := &countingHash{h: sha256.New()}
	if err := dump(ctx, io.MultiWriter(f, h)); err != nil {
		f.Close()
		return nil, nil, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, &Dump{Bytes: h.n, SHA256: hex.EncodeToString(h.h.Sum(nil))}, nil
}

// errDestinationStopped is what the archive's writer sees when the
// destination's Put returned before reading all of it.
var errDestinationStopped = errors.New("the destination stopped reading")

// writeArchive writes the (encrypted) gzip tar stream of the backup to w,
// and fills in m.Paths.
func writeArchive(ctx context.Context, w *stickyWriter, m *Manifest, in Input, dump *os.File) error {
	enc, err := encrypter(w, in.Key)
	if err != nil {
		return err
	}
	// The compressor writes a few hundred bytes at a time; buffered, the
	// hash and the pipe to the destination see big writes.
	bw := bufio.NewWriterSize(enc, pipeSize)
	zw, _ := gzip.NewWriterLevel(bw, gzip.DefaultCompression)
	tw := tar.NewWriter(zw)
	head := *m
	head.Paths = nil
	for _, p := range in.Paths {
		head.Paths = append(head.Paths, Path{Path: p})
	}
	raw, _ := json.MarshalIndent(head, "", "  ")
	if err := writeEntry(tw, manifestEntry, raw, m.CreatedAt); err != nil {
		return err
	}
	m.Paths = nil
	for _, p := range in.Paths {
		st, err := copyPath(ctx, tw, w, p, in.CopyOut)
		if err != nil {
			return fmt.Errorf("backing up %s: %w", p, err)
		}
		m.Paths = append(m.Paths, st)
	}
	if dump != nil {
		hdr := &tar.Header{Name: commandEntry, Mode: 0o600, Size: m.Command.Bytes, ModTime: entryTime(m.CreatedAt), Typeflag: tar.TypeReg}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := io.Copy(tw, ctxReader{ctx, dump}); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	return enc.Close()
}

func writeEntry(tw *tar.Writer, name string, data []byte, at time.Time) error {
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: int64(len(data)), ModTime: entryTime(at), Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	_, err := tw.Write(data)
	return err
}

// copyPath copies the tar stream of one data path into the archive, under
// data/PATH/. out is where the archive goes: when writing it failed, that
// is the error, whatever copyOut then made of its stream being cut.
func copyPath(ctx context.Context, tw *tar.Writer, out *stickyWriter, p string, copyOut func(context.Context, string, io.Writer) error) (Path, error) {
	pr, pw := newPipe(pipeSize)
	done := make(chan error, 1)
	go func() {
		err := copyOut(ctx, p, pw)
		pw.CloseWithError(err)
		done <- err
	}()
	src := &readErr{r: pr}
	st, err := copyEntries(ctx, tw, tar.NewReader(src), p)
	if err == nil {
		// A real tar pads its stream past the end-of-archive blocks;
		// the writer must be able to finish.
		_, err = io.Copy(io.Discard, src)
	}
	pr.CloseWithError(errors.New("the backup stopped reading"))
	cerr := <-done
	switch {
	case out.err != nil:
		return st, out.err // the destination failed
	case err != nil && src.err == nil:
		return st, err // the stream is bad, or ctx ended: copyOut was cut
	case cerr != nil:
		return st, cerr // copyOut failed
	}
	return st, err
}

// readErr keeps the error that ended its reader, other than io.EOF.
type readErr struct {
	r   io.Reader
	err error
}

func (r *readErr) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err != nil && err != io.EOF && r.err == nil {
		r.err = err
	}
	return n, err
}

func copyEntries(ctx context.Context, tw *tar.Writer, tr *tar.Reader, p string) (Path, error) {
	st := Path{Path: p}
	prefix := pathPrefix(p)
	buf := make([]byte, copyBufSize)
	start := &tar.Header{Name: prefix, Mode: 0o755, Typeflag: tar.TypeDir, ModTime: entryTime(time.Time{}), PAXRecords: map[string]string{"comment": pathMark + p}}
	if err := tw.WriteHeader(start); err != nil {
		return st, err
	}
	for {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			return st, nil
		}
		if err != nil {
			return st, fmt.Errorf("the copy of %s is not a tar stream: %w", p, err)
		}
		name, ok := entryName(hdr.Name)
		if !ok {
			continue
		}
		if hdr.Typeflag == tar.TypeDir {
			name += "/"
		}
		hdr.Name = prefix + name
		delete(hdr.PAXRecords, "comment") // only path starts have one
		switch hdr.Typeflag {
		case tar.TypeLink:
			// A hard link names its target in the archive, so that a
			// plain tar extracts it too; Extract takes the prefix off.
			target, ok := entryName(hdr.Linkname)
			if !ok {
				continue
			}
			hdr.Linkname = prefix + target
		case tar.TypeGNUSparse:
			// tar.Reader gives a sparse file's content with its holes
			// filled; it is written as a plain file.
			hdr.Typeflag = tar.TypeReg
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return st, err
		}
		n, err := io.CopyBuffer(tw, tr, buf)
		if err != nil {
			return st, err
		}
		if hdr.Typeflag == tar.TypeReg {
			st.Files++
			st.Bytes += n
		}
	}
}

// entryTime is the modification time of an entry tend makes: at, or now,
// in whole seconds (tar.Writer would round it, maybe into the future, of
// which tar warns).
func entryTime(at time.Time) time.Time {
	if at.IsZero() {
		at = time.Now()
	}
	return at.Truncate(time.Second)
}

// copyBufSize is the buffer that copies an entry from one tar stream to
// another: one per stream, not one per entry as io.Copy's.
const copyBufSize = 128 << 10

// pathPrefix is where the entries of data path p are in an archive.
func pathPrefix(p string) string { return dataPrefix + strings.TrimPrefix(p, "/") + "/" }

// entryName is the clean relative name of a tar entry, and whether it
// names something inside the stream's root (not the root itself).
func entryName(n string) (string, bool) {
	name := path.Clean(strings.TrimPrefix(n, "./"))
	if name == "." || name == ".." || strings.HasPrefix(name, "../") || path.IsAbs(name) {
		return "", false
	}
	return name, true
}

// stickyWriter keeps the first error of its writer: whether the archive's
// destination failed.
type stickyWriter struct {
	w   io.Writer
	err error
}

func (s *stickyWriter) Write(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	n, err := s.w.Write(p)
	s.err = err
	return n, err
}

type countingHash struct {
	h hash.Hash
	n int64
}

func (c *countingHash) Write(p []byte) (int, error) {
	c.h.Write(p)
	c.n += int64(len(p))
	return len(p), nil
}
