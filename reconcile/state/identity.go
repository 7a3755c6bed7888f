package state

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// ErrStoreMissing is wrapped by Open's error when the marker file beside the
// database names a store but the database is missing or empty: the store
// tend wrote is gone, and Open will not start a new, empty one in its place.
var ErrStoreMissing = errors.New("the state store is missing")

// ErrStoreMismatch is wrapped by Open's error when the database is another
// store than the one the marker file beside it names.
var ErrStoreMismatch = errors.New("the state store is not the one that was here")

// Identity says which store a database is: a random ID given once, when the
// store was created (or, for a store older than identities, when Open first
// saw it), and when the store was created.
type Identity struct {
	ID        string    `json:"store_id"`
	CreatedAt time.Time `json:"created_at"`
}

// String is "store ID (created TIME)".
func (id Identity) String() string {
	return fmt.Sprintf("store %s (created %s)", id.ID, id.CreatedAt.Format(time.RFC3339))
}

// Identity is the store's identity.
func (s *Store) Identity() Identity { return s.ident }

// MarkerPath is the marker file of the database at path: the same name with
// the extension ".id" (state.db: state.id). It holds the store's identity,
// so that Open can tell a database that vanished or was swapped from a
// store that was never there.
func MarkerPath(path string) string {
	ext := filepath.Ext(path)
	if ext == ".id" || ext == "" {
		return path + ".id"
	}
	return strings.TrimSuffix(path, ext) + ".id"
}

// markerFile is the marker's JSON.
type markerFile struct {
	StoreID   string `json:"store_id"`
	CreatedAt string `json:"created_at"`
	Database  string `json:"database"`
	Note      string `json:"note,omitempty"`
}

const markerNote = "written by tend: the identity of the state store beside it; see tend store check"

// readMarker reads the marker at path; nil without error when there is none.
func readMarker(path string) (*Identity, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the store's marker: %w", err)
	}
	var m markerFile
	bad := func(why string) error {
		return fmt.Errorf("the store's marker %s cannot be used (%s); if the database beside it is the right store, remove %s and tend writes it anew from the database", path, why, path)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, bad(err.Error())
	}
	if m.StoreID == "" {
		return nil, bad("it names no store")
	}
	t, err := parseTime(m.CreatedAt)
	if err != nil {
		return nil, bad(err.Error())
	}
	return &Identity{ID: m.StoreID, CreatedAt: t}, nil
}

// writeMarker writes the marker at path for the database dbPath, through a
// temporary file renamed over it, so that it is never seen half written.
func writeMarker(path, dbPath string, id Identity) error {
	b, err := json.MarshalIndent(markerFile{
		StoreID: id.ID, CreatedAt: formatTime(id.CreatedAt), Database: filepath.Base(dbPath), Note: markerNote,
	}, "", "  ")
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write the store's marker: %w", err)
	}
	tmp := f.Name()
	_, err = f.Write(append(b, '\n'))
	if err == nil {
		err = f.Chmod(0o600)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write the store's marker: %w", err)
	}
	return nil
}

// absence says what is wrong with the database file at path when it holds
// no store: "missing" or "empty (0 bytes)"; "" when it is there. A
// database of 0 bytes whose write-ahead log holds data is there: a new
// store can live in its log until the first checkpoint.
func absence(path string) (string, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return "missing", nil
	}
	if err != nil {
		return "", err
	}
	if fi.Size() > 0 {
		return "", nil
	}
	if wal, err := os.Stat(path + "-wal"); err == nil && wal.Size() > 0 {
		return "", nil
	}
	return "empty (0 bytes)", nil
}

func missingError(path, marker string, want Identity, what string) error {
	return fmt.Errorf("%w: %s says %s lives here, but %s is %s. "+
		"tend will not start a new, empty store in its place (history, holds and rollback snapshots would be gone without a word): "+
		"restore %s from a backup, or remove %s to start a new, empty store",
		ErrStoreMissing, filepath.Base(marker), want, filepath.Base(path), what, path, marker)
}

func mismatchError(path, marker string, got, want Identity) error {
	return fmt.Errorf("%w: %s is %s, but %s says %s lives here (was the database replaced by another tend's store?). "+
		"Put store %s back (restore %s from a backup), or, if %s is meant to be used here, remove %s and tend adopts it",
		ErrStoreMismatch, filepath.Base(path), got, filepath.Base(marker), want, want.ID, path, filepath.Base(path), marker)
}

// loadIdentity reads the store's identity row; nil when it has none.
func loadIdentity(ctx context.Context, q querier) (*Identity, error) {
	rows, err := q.QueryContext(ctx, `SELECT store_id, created_at FROM store_identity WHERE id = 1`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	if !rows.Next() {
		return nil, rows.Err()
	}
	var id, created string
	if err := rows.Scan(&id, &created); err != nil {
		return nil, err
	}
	t, err := parseTime(created)
	if err != nil {
		return nil, err
	}
	return &Identity{ID: id, CreatedAt: t}, rows.Close()
}

// ensureIdentity returns the store's identity, giving it one first when it
// has none (a new store, or one written before identities): adopt when
// set (the marker's), else a new random ID created when the store's first
// migration was applied.
func (s *Store) ensureIdentity(adopt *Identity) (Identity, error) {
	ctx := context.Background()
	if id, err := loadIdentity(ctx, s.db); err != nil || id != nil {
		if err != nil {
			return Identity{}, err
		}
		return *id, nil
	}
	var out Identity
	err := s.write(func(tx *txn) error {
		id, err := loadIdentity(ctx, tx)
		if err != nil || id != nil {
			if id != nil {
				out = *id
			}
			return err
		}
		if adopt != nil {
			out = *adopt
		} else {
			b := make([]byte, 16)
			if _, err := rand.Read(b); err != nil {
				return err
			}
			out.ID = hex.EncodeToString(b)
			var first sql.NullString
			if err := tx.QueryRowContext(ctx, `SELECT min(applied_at) FROM schema_migrations`).Scan(&first); err != nil {
				return err
			}
			out.CreatedAt = s.now().UTC()
			if t, err := parseNullTime(first); err == nil && !t.IsZero() {
				out.CreatedAt = t
			}
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO store_identity (id, store_id, created_at) VALUES (1, ?, ?)`,
			out.ID, formatTime(out.CreatedAt))
		return err
	})
	if err != nil {
		return Identity{}, fmt.Errorf("give the store its identity: %w", err)
	}
	return out, nil
}
