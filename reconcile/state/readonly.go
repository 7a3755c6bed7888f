package state

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"time"
)

// OpenReadOnly opens the store of another tend (another environment's, for
// promotion) only to read it: nothing is created, migrated or written, and
// a missing file is an error. Its schema may be older or newer than this
// tend's; the revisions are read as far as they are understood.
func OpenReadOnly(path string) (*Store, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("state: open %s read-only: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("state: open %s read-only: not a regular file", path)
	}
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()))
	q.Set("mode", "ro")
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(abs), RawQuery: q.Encode()}
	db, err := sql.Open("sqlite", u.String())
	if err != nil {
		return nil, fmt.Errorf("state: open %s read-only: %w", path, err)
	}
	var n int
	err = db.QueryRowContext(context.Background(),
		`SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'revisions'`).Scan(&n)
	if err == nil && n == 0 {
		err = errors.New("it is not a tend state store (no revisions table)")
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("state: open %s read-only: %w", path, annotate(abs, err))
	}
	return &Store{db: db, path: path, display: path, abs: abs, file: fi, now: time.Now, readOnly: true}, nil
}
