package state

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// closeStore closes s, failing the test on error.
func closeStore(t *testing.T, s *Store) {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

func wantErrText(t *testing.T, err error, wants ...string) {
	t.Helper()
	for _, want := range wants {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestIdentityOfNewStore(t *testing.T) {
	before := time.Now().Add(-time.Second)
	s := openStore(t)
	id := s.Identity()
	if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(id.ID) {
		t.Errorf("store id %q, want 32 hex digits", id.ID)
	}
	if id.CreatedAt.Before(before) || id.CreatedAt.After(time.Now()) {
		t.Errorf("created at %v, want about now", id.CreatedAt)
	}
	marker := filepath.Join(filepath.Dir(s.Path()), "state.id")
	if MarkerPath(s.Path()) != marker {
		t.Errorf("MarkerPath = %s, want %s", MarkerPath(s.Path()), marker)
	}
	fi, err := os.Stat(marker)
	if err != nil {
		t.Fatal(err)
	}
	if m := fi.Mode().Perm(); m != 0o600 {
		t.Errorf("marker mode %o, want 600", m)
	}
	mark, err := readMarker(marker)
	if err != nil || mark == nil || *mark != id {
		t.Fatalf("marker holds %v (%v), want %v", mark, err, id)
	}
	path := s.Path()
	closeStore(t, s)
	if got := reopen(t, path).Identity(); got != id {
		t.Errorf("reopened: identity %v, want %v", got, id)
	}
}

func TestMarkerPath(t *testing.T) {
	for in, want := range map[string]string{
		"/v/state.db":     "/v/state.id",
		"/v/fresh.db":     "/v/fresh.id",
		"/v/store":        "/v/store.id",
		"/v/a.b/state":    "/v/a.b/state.id",
		"/v/odd.id":       "/v/odd.id.id",
		"/v/state.sqlite": "/v/state.id",
	} {
		if got := MarkerPath(in); got != want {
			t.Errorf("MarkerPath(%s) = %s, want %s", in, got, want)
		}
	}
}

// A store whose database vanished, or was emptied, is refused while its
// marker says it should be there; nothing is created in its place.
func TestOpenRefusesMissingStore(t *testing.T) {
	for _, tc := range []struct {
		name, what string
		lose       func(path string) error
	}{
		{"removed", "is missing", func(path string) error {
			for _, p := range []string{path, path + "-wal", path + "-shm"} {
				if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
					return err
				}
			}
			return nil
		}},
		{"truncated", "is empty (0 bytes)", func(path string) error { return os.Truncate(path, 0) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openStore(t)
			if _, err := s.BeginRevision(Revision{Server: "web"}); err != nil {
				t.Fatal(err)
			}
			id, path := s.Identity(), s.Path()
			closeStore(t, s)
			if err := tc.lose(path); err != nil {
				t.Fatal(err)
			}
			before, _ := os.Stat(path)
			s2, err := Open(path)
			if err == nil {
				s2.Close()
				t.Fatal("Open accepted a lost store")
			}
			if !errors.Is(err, ErrStoreMissing) {
				t.Errorf("err = %v, want ErrStoreMissing", err)
			}
			marker := MarkerPath(path)
			wantErrText(t, err, "state.id says store "+id.ID, "state.db "+tc.what,
				"restore "+path+" from a backup", "remove "+marker+" to start a new, empty store")
			t.Log(err)
			after, _ := os.Stat(path)
			if (before == nil) != (after == nil) || (after != nil && after.Size() != 0) {
				t.Errorf("Open touched the lost database: before %v, after %v", before, after)
			}

			// As the error says: without the marker, a new, empty store.
			if err := os.Remove(marker); err != nil {
				t.Fatal(err)
			}
			s3 := reopen(t, path)
			if s3.Identity().ID == id.ID {
				t.Error("the new store has the lost one's identity")
			}
			if h, err := s3.History("web", 0); err != nil || len(h) != 0 {
				t.Errorf("history of the new store: %v, %v", h, err)
			}
		})
	}
}

// copyStore copies a closed store's database file.
func copyStore(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// Another store's database put in the place of this one is refused; with
// the marker removed, it is adopted.
func TestOpenRefusesOtherStore(t *testing.T) {
	a, b := openStore(t), openStore(t)
	aID, bID := a.Identity(), b.Identity()
	aPath, bPath := a.Path(), b.Path()
	closeStore(t, a)
	closeStore(t, b)
	copyStore(t, bPath, aPath)

	s, err := Open(aPath)
	if err == nil {
		s.Close()
		t.Fatal("Open accepted another store's database")
	}
	if !errors.Is(err, ErrStoreMismatch) {
		t.Errorf("err = %v, want ErrStoreMismatch", err)
	}
	wantErrText(t, err, "state.db is store "+bID.ID, "state.id says store "+aID.ID,
		"restore "+aPath+" from a backup", "remove "+MarkerPath(aPath)+" and tend adopts it")
	t.Log(err)

	if err := os.Remove(MarkerPath(aPath)); err != nil {
		t.Fatal(err)
	}
	if got := reopen(t, aPath).Identity(); got != bID {
		t.Errorf("adopted store: identity %v, want %v", got, bID)
	}
	if mark, err := readMarker(MarkerPath(aPath)); err != nil || mark == nil || *mark != bID {
		t.Errorf("marker after adoption: %v, %v", mark, err)
	}
}

// makeOld turns a store into one written before identities: no
// store_identity table (nor the later usage_samples), schema version 4, no
// marker.
func makeOld(t *testing.T, s *Store) {
	t.Helper()
	for _, q := range []string{`DROP TABLE store_identity`, `DROP TABLE usage_samples`, `DROP TABLE approvals`, `DELETE FROM schema_migrations WHERE version >= 5`} {
		if _, err := s.db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Remove(MarkerPath(s.Path())); err != nil {
		t.Fatal(err)
	}
}

func TestOpenAdoptsOlderStore(t *testing.T) {
	s := openStore(t)
	path := s.Path()
	rev, err := s.BeginRevision(Revision{Server: "web"})
	if err != nil {
		t.Fatal(err)
	}
	var created string
	if err := s.db.QueryRow(`SELECT applied_at FROM schema_migrations WHERE version = 1`).Scan(&created); err != nil {
		t.Fatal(err)
	}
	makeOld(t, s)
	closeStore(t, s)

	s2 := reopen(t, path)
	id := s2.Identity()
	if id.ID == "" {
		t.Fatal("the older store got no identity")
	}
	if got := formatTime(id.CreatedAt); got != created {
		t.Errorf("created at %s, want the first migration's time %s", got, created)
	}
	if mark, err := readMarker(MarkerPath(path)); err != nil || mark == nil || *mark != id {
		t.Errorf("marker: %v, %v; want %v", mark, err, id)
	}
	if _, err := s2.Revision(rev); err != nil {
		t.Errorf("the older store's revision: %v", err)
	}
	closeStore(t, s2)
	if got := reopen(t, path).Identity(); got != id {
		t.Errorf("reopened: %v, want %v", got, id)
	}
}

// A backup taken before identities, restored where a marker already is,
// takes the marker's identity: it is presumed to be that store.
func TestOpenAdoptsMarkerForOlderStore(t *testing.T) {
	s := openStore(t)
	path, id := s.Path(), s.Identity()
	makeOld(t, s)
	closeStore(t, s)
	if err := writeMarker(MarkerPath(path), path, id); err != nil {
		t.Fatal(err)
	}
	if got := reopen(t, path).Identity(); got != id {
		t.Errorf("identity %v, want the marker's %v", got, id)
	}
}

func TestOpenBadMarker(t *testing.T) {
	s := openStore(t)
	path := s.Path()
	closeStore(t, s)
	marker := MarkerPath(path)
	if err := os.WriteFile(marker, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(path)
	if err == nil {
		s2.Close()
		t.Fatal("Open accepted a garbled marker")
	}
	wantErrText(t, err, marker, "remove "+marker)
	t.Log(err)
}
