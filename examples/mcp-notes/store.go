package main

import (
	"cmp"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// notesFile is the name of the store's file inside the data directory.
const notesFile = "notes.json"

// Note is one note. It is also the output of add_note and get_note.
type Note struct {
	ID        string    `json:"id" jsonschema:"the note's unique id"`
	Title     string    `json:"title" jsonschema:"the note's title"`
	Body      string    `json:"body" jsonschema:"the note's text"`
	Tags      []string  `json:"tags" jsonschema:"the note's tags, lower case"`
	CreatedAt time.Time `json:"created_at" jsonschema:"when the note was added (RFC 3339)"`
}

// fileFormat is the layout of notes.json.
type fileFormat struct {
	Format int    `json:"format"`
	Notes  []Note `json:"notes"`
}

var errNotFound = errors.New("not found")

// Store keeps the notes in memory and in one JSON file, rewritten atomically
// (a temporary file in the same directory, then a rename) on every change.
type Store struct {
	mu    sync.RWMutex
	dir   string
	path  string
	notes map[string]Note
}

// openStore creates dir if needed and loads its notes file, if any.
func openStore(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	s := &Store{dir: dir, path: filepath.Join(dir, notesFile), notes: map[string]Note{}}
	data, err := os.ReadFile(s.path)
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, err
	}
	var f fileFormat
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("%s is not a valid notes file: %w", s.path, err)
	}
	for _, n := range f.Notes {
		if n.ID == "" {
			return nil, fmt.Errorf("%s: a note has no id", s.path)
		}
		if n.Tags == nil {
			n.Tags = []string{}
		}
		s.notes[n.ID] = n
	}
	return s, nil
}

// Count returns the number of notes.
func (s *Store) Count() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.notes)
}

// Add stores a new note and returns it.
func (s *Store) Add(title, body string, tags []string) (Note, error) {
	title = strings.TrimSpace(title)
	if title == "" {
		return Note{}, errors.New("title must not be empty")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	id, err := s.newIDLocked()
	if err != nil {
		return Note{}, err
	}
	n := Note{
		ID:        id,
		Title:     title,
		Body:      body,
		Tags:      normalizeTags(tags),
		CreatedAt: time.Now().UTC().Truncate(time.Millisecond),
	}
	s.notes[id] = n
	if err := s.saveLocked(); err != nil {
		delete(s.notes, id)
		return Note{}, fmt.Errorf("saving the note: %w", err)
	}
	return n, nil
}

// Get returns the note with the given id.
func (s *Store) Get(id string) (Note, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	n, ok := s.notes[strings.TrimSpace(id)]
	if !ok {
		return Note{}, errNotFound
	}
	return n, nil
}

// Delete removes the note with the given id and returns it.
func (s *Store) Delete(id string) (Note, error) {
	id = strings.TrimSpace(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	n, ok := s.notes[id]
	if !ok {
		return Note{}, errNotFound
	}
	delete(s.notes, id)
	if err := s.saveLocked(); err != nil {
		s.notes[id] = n
		return Note{}, fmt.Errorf("saving the change: %w", err)
	}
	return n, nil
}

// List returns the notes, oldest first; with a tag, only those that have it
// (compared case-insensitively).
func (s *Store) List(tag string) []Note {
	tag = strings.ToLower(strings.TrimSpace(tag))
	return s.filter(func(n Note) bool { return tag == "" || slices.Contains(n.Tags, tag) })
}

// ListTags returns the notes that have every one of tags (compared
// case-insensitively), oldest first; with no tags, every note.
func (s *Store) ListTags(tags []string) []Note {
	want := normalizeTags(tags)
	return s.filter(func(n Note) bool {
		for _, t := range want {
			if !slices.Contains(n.Tags, t) {
				return false
			}
		}
		return true
	})
}

// Search returns the notes whose title or body contains query, ignoring case,
// oldest first.
func (s *Store) Search(query string) []Note {
	q := strings.ToLower(query)
	return s.filter(func(n Note) bool {
		return strings.Contains(strings.ToLower(n.Title), q) || strings.Contains(strings.ToLower(n.Body), q)
	})
}

func (s *Store) filter(keep func(Note) bool) []Note {
	s.mu.RLock()
	out := []Note{}
	for _, n := range s.notes {
		if keep(n) {
			out = append(out, n)
		}
	}
	s.mu.RUnlock()
	sortNotes(out)
	return out
}

func sortNotes(ns []Note) {
	slices.SortFunc(ns, func(a, b Note) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), strings.Compare(a.ID, b.ID))
	})
}

func (s *Store) newIDLocked() (string, error) {
	for range 10 {
		var b [6]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", err
		}
		id := hex.EncodeToString(b[:])
		if _, taken := s.notes[id]; !taken {
			return id, nil
		}
	}
	return "", errors.New("could not pick a free note id")
}

// saveLocked writes every note to the notes file atomically: it writes a
// temporary file in the same directory, syncs it and renames it over the old
// file, so that a crash leaves either the old or the new file, never half of
// one.
func (s *Store) saveLocked() (err error) {
	f := fileFormat{Format: 1, Notes: make([]Note, 0, len(s.notes))}
	for _, n := range s.notes {
		f.Notes = append(f.Notes, n)
	}
	sortNotes(f.Notes)
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	data = append(data, '\n')

	tmp, err := os.CreateTemp(s.dir, ".notes-*.json.tmp")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = os.Remove(tmp.Name())
		}
	}()
	if _, err := tmp.Write(data); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), s.path); err != nil {
		return err
	}
	// Make the rename itself durable; not every platform can sync a directory.
	if d, derr := os.Open(s.dir); derr == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}

// normalizeTags trims and lower-cases tags, and drops empty and repeated ones.
func normalizeTags(tags []string) []string {
	out := []string{}
	for _, t := range tags {
		t = strings.ToLower(strings.TrimSpace(t))
		if t != "" && !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out
}
