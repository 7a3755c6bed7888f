package state

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// ErrSourceMismatch is wrapped by PutSource's error when rev is already
// stored with different files: a revision string must name one content.
var ErrSourceMismatch = errors.New("source revision already stored with different files")

// sourceEncoding names how sources.data is encoded: a gzip-compressed tar
// archive of regular files in name order, with fixed modes and times, so that
// the same files always give the same bytes. `sqlite3 state.db "SELECT
// writefile('src.tgz', data) FROM sources WHERE rev = '...'"` then
// `tar xzf src.tgz` unpacks one by hand.
const sourceEncoding = "tar+gzip"

// PutSource stores a snapshot of the desired-state source files of rev (file
// name → content). It is idempotent: storing the same files again under the
// same rev does nothing, while storing different files under a rev already
// stored fails with ErrSourceMismatch and keeps the first.
func (s *Store) PutSource(rev string, files map[string][]byte) error {
	if rev == "" {
		return errors.New("state: put source: empty revision")
	}
	raw, err := encodeSource(files)
	if err != nil {
		return fmt.Errorf("state: put source %s: %w", rev, err)
	}
	sum := sha256.Sum256(raw)
	digest := hex.EncodeToString(sum[:])
	var size int
	for _, b := range files {
		size += len(b)
	}
	ctx := context.Background()
	// Check first, outside any write transaction, so that the common repeat
	// does neither the compression nor a write.
	var stored string
	err = s.queryRowContext(ctx, `SELECT sha256 FROM sources WHERE rev = ?`, rev).Scan(&stored)
	switch {
	case err == nil:
		return sourceConflict(rev, stored, digest)
	case !errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("state: put source %s: %w", rev, err)
	}
	data, err := compress(raw)
	if err != nil {
		return fmt.Errorf("state: put source %s: %w", rev, err)
	}
	err = s.write(func(tx *txn) error {
		// Another tend may have stored rev since the check above.
		err := tx.QueryRowContext(ctx, `SELECT sha256 FROM sources WHERE rev = ?`, rev).Scan(&stored)
		if err == nil {
			return sourceConflict(rev, stored, digest)
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO sources (rev, encoding, sha256, files, size, data, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?)`,
			rev, sourceEncoding, digest, len(files), size, data, formatTime(s.now()))
		return err
	})
	if err != nil {
		return fmt.Errorf("state: put source %s: %w", rev, err)
	}
	return nil
}

func sourceConflict(rev, stored, digest string) error {
	if stored == digest {
		return nil
	}
	return fmt.Errorf("state: put source %s: %w (stored sha256 %s, new %s)", rev, ErrSourceMismatch, stored, digest)
}

// GetSource returns the files stored for rev, or ErrNotFound.
func (s *Store) GetSource(rev string) (map[string][]byte, error) {
	var (
		encoding, digest string
		data             []byte
	)
	err := s.queryRowContext(context.Background(),
		`SELECT encoding, sha256, data FROM sources WHERE rev = ?`, rev).Scan(&encoding, &digest, &data)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("state: source %s: %w", rev, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("state: source %s: %w", rev, err)
	}
	if encoding != sourceEncoding {
		return nil, fmt.Errorf("state: source %s: unknown encoding %q", rev, encoding)
	}
	raw, err := decompress(data)
	if err != nil {
		return nil, fmt.Errorf("state: source %s: %w", rev, err)
	}
	if sum := sha256.Sum256(raw); hex.EncodeToString(sum[:]) != digest {
		return nil, fmt.Errorf("state: source %s: stored snapshot is corrupt (sha256 mismatch)", rev)
	}
	files, err := decodeSource(raw)
	if err != nil {
		return nil, fmt.Errorf("state: source %s: %w", rev, err)
	}
	return files, nil
}

// encodeSource writes files as a tar archive that depends on nothing but the
// files: names sorted, mode 0644, time the Unix epoch, no owner.
func encodeSource(files map[string][]byte) ([]byte, error) {
	names := make([]string, 0, len(files))
	for name := range files {
		if name == "" || strings.ContainsRune(name, 0) {
			return nil, fmt.Errorf("invalid file name %q", name)
		}
		names = append(names, name)
	}
	slices.Sort(names)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	epoch := time.Unix(0, 0)
	for _, name := range names {
		b := files[name]
		hdr := &tar.Header{
			Typeflag: tar.TypeReg,
			Name:     name,
			Mode:     0o644,
			Size:     int64(len(b)),
			ModTime:  epoch,
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("encode %s: %w", name, err)
		}
		if _, err := tw.Write(b); err != nil {
			return nil, fmt.Errorf("encode %s: %w", name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func decodeSource(raw []byte) (map[string][]byte, error) {
	files := map[string][]byte{}
	tr := tar.NewReader(bytes.NewReader(raw))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return files, nil
		}
		if err != nil {
			return nil, fmt.Errorf("decode snapshot: %w", err)
		}
		if hdr.Typeflag != tar.TypeReg {
			return nil, fmt.Errorf("decode snapshot: %s is not a regular file", hdr.Name)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			return nil, fmt.Errorf("decode snapshot: %s: %w", hdr.Name, err)
		}
		files[hdr.Name] = b
	}
}

// compress gzips raw with no name and no time in the header, so that the
// output depends only on raw.
func compress(raw []byte) ([]byte, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(raw); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func decompress(data []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("decompress snapshot: %w", err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("decompress snapshot: %w", err)
	}
	return raw, zr.Close()
}
