package state

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fillStore records n verified revisions with a spec of about 1 KB.
func fillStore(t testing.TB, s *Store, n int) {
	t.Helper()
	spec := []byte(`{"image":"registry.example/web:1.4.2",` + strings.Repeat(`"env":{"LOG":"info","TOKEN":"(redacted)"},`, 24) + `"replicas":3}`)
	tx, err := s.db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if _, err := tx.Exec(`INSERT INTO revisions (server, spec_hash, spec, outcome, started_at) VALUES (?, ?, ?, 'verified', ?)`,
			fmt.Sprintf("srv-%d", i%50), fmt.Sprintf("sha256:%d", i), spec, formatTime(s.now())); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

// damagedStore returns the path of a closed store of 2,000 revisions whose
// revisions table's root page was overwritten with 4 KB of random bytes:
// SQLite opens it as if nothing were wrong.
func damagedStore(t *testing.T) string {
	t.Helper()
	s := openStore(t)
	fillStore(t, s, 2000)
	var root, pageSize int64
	if err := s.db.QueryRow(`SELECT rootpage FROM sqlite_master WHERE name = 'revisions'`).Scan(&root); err != nil {
		t.Fatal(err)
	}
	if err := s.db.QueryRow(`PRAGMA page_size`).Scan(&pageSize); err != nil {
		t.Fatal(err)
	}
	path := s.Path()
	closeStore(t, s) // checkpoints: every page is in the database file
	junk := make([]byte, 4096)
	rng := rand.New(rand.NewPCG(15, 4))
	for i := range junk {
		junk[i] = byte(rng.UintN(256))
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(junk, (root-1)*pageSize); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func wantDamaged(t *testing.T, what string, err error, path string) {
	t.Helper()
	if !errors.Is(err, ErrDamaged) {
		t.Errorf("%s: err = %v, want ErrDamaged", what, err)
		return
	}
	wantErrText(t, err, path, "malformed", "Keep the file as it is", "tend store check", "restore "+path+" from a backup")
}

func TestDamagedStore(t *testing.T) {
	path := damagedStore(t)
	s := reopen(t, path)
	err := s.QuickCheck(t.Context())
	wantDamaged(t, "QuickCheck", err, path)
	t.Log(err)
	_, err = s.History("srv-1", 10)
	wantDamaged(t, "History", err, path)
	_, err = s.BeginRevision(Revision{Server: "web"})
	wantDamaged(t, "BeginRevision", err, path)

	r, err := Inspect(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Damaged() || r.OK() {
		t.Errorf("Inspect: damaged %v, ok %v; want damaged", r.Damaged(), r.OK())
	}
	if len(r.Integrity) == 0 || r.Integrity[0] == "ok" {
		t.Errorf("integrity_check found %q", r.Integrity)
	}
	t.Logf("integrity: %q", r.Integrity)
}

func TestQuickCheckHealthy(t *testing.T) {
	s := openStore(t)
	fillStore(t, s, 100)
	if err := s.QuickCheck(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// Writes to a store whose file was removed or replaced under it are
// refused: SQLite would write to the deleted file.
func TestWriteToRemovedStore(t *testing.T) {
	t.Run("state directory removed", func(t *testing.T) {
		s := openStore(t)
		dir := filepath.Dir(s.Path())
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
		_, err := s.BeginRevision(Revision{Server: "web"})
		if !errors.Is(err, ErrStoreRemoved) {
			t.Fatalf("err = %v, want ErrStoreRemoved", err)
		}
		wantErrText(t, err, "the state directory "+dir+" was removed, and state.db with it", "would be lost", "Put "+s.Path()+" back from a backup")
		t.Log(err)
	})
	t.Run("file replaced", func(t *testing.T) {
		s := openStore(t)
		other := s.Path() + ".other"
		if err := os.WriteFile(other, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(other, s.Path()); err != nil {
			t.Fatal(err)
		}
		err := s.PutHold(Hold{Server: "web", SpecHash: "h"})
		if !errors.Is(err, ErrStoreRemoved) {
			t.Fatalf("err = %v, want ErrStoreRemoved", err)
		}
		wantErrText(t, err, s.Path()+" was replaced by another file")
	})
}

func TestInspectHealthy(t *testing.T) {
	s := openStore(t)
	fillStore(t, s, 120)
	if err := s.PutHold(Hold{Server: "srv-1", SpecHash: "h"}); err != nil {
		t.Fatal(err)
	}
	id, path := s.Identity(), s.Path()
	r, err := Inspect(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	if !r.OK() || r.Damaged() {
		t.Fatalf("report of a healthy store: %+v", r)
	}
	if r.Identity == nil || *r.Identity != id || r.Marker == nil || *r.Marker != id {
		t.Errorf("identity %v, marker %v; want %v", r.Identity, r.Marker, id)
	}
	if r.SchemaVersion != schemaVersion() || r.KnownSchema != schemaVersion() {
		t.Errorf("schema %d (known %d), want %d", r.SchemaVersion, r.KnownSchema, schemaVersion())
	}
	rows := map[string]int64{}
	for _, tr := range r.Tables {
		if tr.Error != "" {
			t.Errorf("table %s: %s", tr.Table, tr.Error)
		}
		rows[tr.Table] = tr.Rows
	}
	if rows["revisions"] != 120 || rows["holds"] != 1 || rows["store_identity"] != 1 {
		t.Errorf("row counts %v", rows)
	}
}

// Inspect writes nothing: an older store stays as it was, without identity
// or marker, and a lost one is reported, not created.
func TestInspectWritesNothing(t *testing.T) {
	s := openStore(t)
	path := s.Path()
	makeOld(t, s)
	closeStore(t, s)
	r, err := Inspect(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	if r.Identity != nil || r.Marker != nil || r.SchemaVersion != 4 || !r.OK() {
		t.Errorf("older store: identity %v, marker %v, schema %d, ok %v", r.Identity, r.Marker, r.SchemaVersion, r.OK())
	}
	if _, err := os.Stat(MarkerPath(path)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Inspect wrote a marker: %v", err)
	}

	lost := openStore(t)
	lostPath := lost.Path()
	closeStore(t, lost)
	if err := os.Remove(lostPath); err != nil {
		t.Fatal(err)
	}
	r, err = Inspect(t.Context(), lostPath)
	if err != nil {
		t.Fatal(err)
	}
	if r.Exists || r.OK() || !strings.Contains(r.IdentityProblem, "state.db is missing") {
		t.Errorf("lost store: exists %v, ok %v, problem %q", r.Exists, r.OK(), r.IdentityProblem)
	}
	if _, err := os.Stat(lostPath); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Inspect created the lost store: %v", err)
	}
}

func TestInspectOtherStore(t *testing.T) {
	a, b := openStore(t), openStore(t)
	aPath, bPath := a.Path(), b.Path()
	closeStore(t, a)
	closeStore(t, b)
	copyStore(t, bPath, aPath)
	r, err := Inspect(t.Context(), aPath)
	if err != nil {
		t.Fatal(err)
	}
	if r.OK() || r.Damaged() || !strings.Contains(r.IdentityProblem, "not the one that was here") {
		t.Errorf("ok %v, damaged %v, problem %q", r.OK(), r.Damaged(), r.IdentityProblem)
	}
}
