package backup

import (
	"archive/tar"
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
		defer os.Remove(f.Name())
		defer f.Close()
		dump, m.Command = f, d
	}
	pr, pw := io.Pipe()
	counter := &countingHash{h: sha256.New()}
	writeErr := make(chan error, 1)
	go func() {
		err := writeArchive(ctx, io.MultiWriter(pw, counter), &m, in, dump)
		pw.CloseWithError(err)
		writeErr <- err
	}()
	putErr := dest.Put(ctx, m.Archive, pr)
	pr.CloseWithError(errors.New("the destination stopped reading"))
	if err := <-writeErr; err != nil {
		return nil, err
	}
	if putErr != nil {
		return nil, fmt.Errorf("writing %s to %s: %w", m.Archive, dest.URL(), putErr)
	}
	m.Size, m.SHA256 = counter.n, hex.EncodeToString(counter.h.Sum(nil))
	raw, _ := json.MarshalIndent(m, "", "  ")
	if err := dest.Put(ctx, ManifestName(m.Server, m.ID), strings.NewReader(string(raw)+"\n")); err != nil {
		_ = dest.Delete(context.WithoutCancel(ctx), m.Archive)
		return nil, fmt.Errorf("writing the manifest of %s to %s: %w", m.ID, dest.URL(), err)
	}
	return &m, nil
}

func spoolDump(ctx context.Context, dump func(context.Context, io.Writer) error) (*os.File, *Dump, error) {
	f, err := os.CreateTemp("", "tend-dump-*")
	if err != nil {
		return nil, nil, err
	}
	h := &countingHash{h: sha256.New()}
	if err := dump(ctx, io.MultiWriter(f, h)); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, nil, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, nil, err
	}
	return f, &Dump{Bytes: h.n, SHA256: hex.EncodeToString(h.h.Sum(nil))}, nil
}

// writeArchive writes the (encrypted) gzip tar stream of the backup to w,
// and fills in m.Paths.
func writeArchive(ctx context.Context, w io.Writer, m *Manifest, in Input, dump *os.File) error {
	enc, err := encrypter(w, in.Key)
	if err != nil {
		return err
	}
	zw, _ := gzip.NewWriterLevel(enc, gzip.DefaultCompression)
	tw := tar.NewWriter(zw)
	head := *m
	head.Paths = nil
	for _, p := range in.Paths {
		head.Paths = append(head.Paths, Path{Path: p})
	}
	raw, _ := json.MarshalIndent(head, "", "  ")
	if err := writeEntry(tw, manifestEntry, raw); err != nil {
		return err
	}
	m.Paths = nil
	for _, p := range in.Paths {
		st, err := copyPath(ctx, tw, p, in.CopyOut)
		if err != nil {
			return fmt.Errorf("backing up %s: %w", p, err)
		}
		m.Paths = append(m.Paths, st)
	}
	if dump != nil {
		hdr := &tar.Header{Name: commandEntry, Mode: 0o600, Size: m.Command.Bytes, ModTime: m.CreatedAt, Typeflag: tar.TypeReg}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := io.Copy(tw, dump); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return enc.Close()
}

func writeEntry(tw *tar.Writer, name string, data []byte) error {
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: int64(len(data)), ModTime: time.Now(), Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	_, err := tw.Write(data)
	return err
}

// copyPath copies the tar stream of one data path into the archive, under
// data/PATH/.
func copyPath(ctx context.Context, tw *tar.Writer, p string, copyOut func(context.Context, string, io.Writer) error) (Path, error) {
	st := Path{Path: p}
	prefix := dataPrefix + strings.TrimPrefix(p, "/") + "/"
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := copyOut(ctx, p, pw)
		pw.CloseWithError(err)
		done <- err
	}()
	defer pr.Close()
	if err := tw.WriteHeader(&tar.Header{Name: prefix, Mode: 0o755, Typeflag: tar.TypeDir, ModTime: time.Now()}); err != nil {
		return st, err
	}
	tr := tar.NewReader(pr)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			if cerr := <-done; cerr != nil {
				return st, cerr
			}
			return st, err
		}
		name := path.Clean(strings.TrimPrefix(hdr.Name, "./"))
		if name == "." || name == ".." || strings.HasPrefix(name, "../") || path.IsAbs(name) {
			continue
		}
		if hdr.Typeflag == tar.TypeDir {
			name += "/"
		}
		hdr.Name = prefix + name
		if err := tw.WriteHeader(hdr); err != nil {
			return st, err
		}
		if hdr.Typeflag == tar.TypeReg {
			n, err := io.Copy(tw, tr)
			if err != nil {
				return st, err
			}
			st.Files++
			st.Bytes += n
		}
	}
	return st, <-done
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
