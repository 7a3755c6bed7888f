package main

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestStorePersists(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nested", "data") // created on open
	s, err := openStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	a, err := s.Add("  First  ", "Alpha body", []string{"Work", " work", "", "TODO"})
	if err != nil {
		t.Fatal(err)
	}
	if a.Title != "First" || !slices.Equal(a.Tags, []string{"work", "todo"}) {
		t.Errorf("Add normalised to %+v", a)
	}
	b, err := s.Add("Second", "beta BODY", nil)
	if err != nil {
		t.Fatal(err)
	}
	if b.Tags == nil {
		t.Error("a note without tags has nil tags; want an empty list")
	}
	if _, err := s.Add(" \t", "x", nil); err == nil || !strings.Contains(err.Error(), "title must not be empty") {
		t.Errorf("an empty title: %v", err)
	}

	s2, err := openStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	if s2.Count() != 2 {
		t.Fatalf("reopened store has %d notes, want 2", s2.Count())
	}
	got, err := s2.Get(a.ID)
	if err != nil || got.Title != "First" || !got.CreatedAt.Equal(a.CreatedAt) {
		t.Errorf("Get after reopen = %+v, %v", got, err)
	}

	if ns := s2.Search("BODY"); len(ns) != 2 || ns[0].ID != a.ID || ns[1].ID != b.ID {
		t.Errorf("Search(BODY) = %v, want both, oldest first", ns)
	}
	if ns := s2.Search("alpha"); len(ns) != 1 || ns[0].ID != a.ID {
		t.Errorf("Search(alpha) = %v", ns)
	}
	if ns := s2.Search("sec"); len(ns) != 1 || ns[0].ID != b.ID {
		t.Errorf("Search(sec) matches titles: %v", ns)
	}
	if ns := s2.List("WORK"); len(ns) != 1 || ns[0].ID != a.ID {
		t.Errorf("List(WORK) = %v", ns)
	}
	if ns := s2.List(""); len(ns) != 2 {
		t.Errorf("List() = %v", ns)
	}
	if ns := s2.List("none"); ns == nil || len(ns) != 0 {
		t.Errorf("List(none) = %#v, want an empty, non-nil list", ns)
	}

	if _, err := s2.Delete(a.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s2.Delete(a.ID); !errors.Is(err, errNotFound) {
		t.Errorf("second Delete: %v", err)
	}
	if _, err := s2.Get("nope"); !errors.Is(err, errNotFound) {
		t.Errorf("Get(nope): %v", err)
	}
	s3, err := openStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	if s3.Count() != 1 {
		t.Errorf("after Delete and reopen: %d notes, want 1", s3.Count())
	}

	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != notesFile {
		t.Errorf("data dir holds %v; want only %s, no temporary files", entries, notesFile)
	}
}

func TestStoreRejectsCorruptFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, notesFile), []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := openStore(dir); err == nil || !strings.Contains(err.Error(), "not a valid notes file") {
		t.Errorf("openStore on a corrupt file: %v", err)
	}
}

func TestStoreSaveFailureRollsBack(t *testing.T) {
	dir := t.TempDir()
	s, err := openStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	// Make the rename fail: the notes file's place is taken by a directory
	// that is not empty.
	if err := os.MkdirAll(filepath.Join(dir, notesFile, "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Add("doomed", "", nil); err == nil {
		t.Fatal("Add succeeded though the file cannot be written")
	}
	if s.Count() != 0 {
		t.Errorf("a failed Add left %d notes in memory", s.Count())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("a failed save left %v", entries)
	}
}
