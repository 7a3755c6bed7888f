package null

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"
)

// File names in the provider's directory.
const (
	snapshotFile = "instances.jsonl" // every record, one JSON object a line
	logFile      = "changes.jsonl"   // records and deletions since the snapshot
	lockFile     = "lock"            // flock: shared to read, exclusive to write
)

// minCompact is the fewest log lines that make a new snapshot: below it a
// small fleet keeps appending; above it a snapshot is written once the log
// holds as many lines as there are records, so that its cost (one write of
// every record) is spread over at least as many changes.
const minCompact = 1024

// record is one line of the snapshot or the log: a replica, or (Deleted)
// the removal of one.
type record struct {
	ManagedBy string         `json:"managed_by"`
	Server    string         `json:"server"`
	Replica   int            `json:"replica"`
	Deleted   bool           `json:"deleted,omitempty"`
	SpecHash  string         `json:"spec_hash,omitempty"`
	Revision  string         `json:"revision,omitempty"`
	Version   string         `json:"version,omitempty"`
	ID        string         `json:"id,omitempty"`
	Ports     map[string]int `json:"ports,omitempty"`
	StartedAt time.Time      `json:"started_at,omitzero"`
}

// replicas are one server's records, by replica.
type replicas map[int]*record

// store keeps the provider's records in dir: a snapshot and an append log,
// read into memory once and read again only when another process changed
// them (their size, inode or modification time differ from what this one
// last read or wrote). Every change appends one line to the log (one write
// call, no rewrite of the other records); once the log is as long as the
// snapshot, the records go to a new snapshot (written beside it, synced and
// renamed over it) and the log starts again empty.
//
// A flock on dir/lock, shared while reading and exclusive while writing,
// keeps tend processes that share the directory from reading a half-made
// snapshot or interleaving their changes. Appends are not synced: a change
// survives the end or the kill of tend, and a power loss may lose the last
// changes (the replicas then look gone, and the next plan starts them
// again). A line cut short by a crash is ignored when read, and cut off
// before the next append.
type store struct {
	dir string

	mu    sync.Mutex
	lock  *os.File // nil until the directory exists
	log   *os.File
	owner map[string]map[string]replicas // managed-by → server → replica → record

	// What this process last saw of the files.
	snapSeen  fileStamp
	logSeen   fileStamp
	logValid  int64 // the log's length up to its last whole line
	logLines  int
	nRecords  int
	everRead  bool
	reloads   int // how many times the files were read (tests)
	snapshots int // how many snapshots were written (tests)
}

// fileStamp tells whether a file changed: a missing file has the zero stamp.
type fileStamp struct {
	ino   uint64
	size  int64
	mtime int64
}

func stampOf(fi os.FileInfo) fileStamp {
	st := fileStamp{size: fi.Size(), mtime: fi.ModTime().UnixNano()}
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		st.ino = sys.Ino
	}
	return st
}

func stat(path string) (fileStamp, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return fileStamp{}, nil
	}
	if err != nil {
		return fileStamp{}, err
	}
	return stampOf(fi), nil
}

func newStore(dir string) *store {
	return &store{dir: dir, owner: map[string]map[string]replicas{}}
}

// open opens the lock file and the log; with create, it makes the
// directory first. Without create and without the directory, it reports
// false: there is nothing recorded.
func (s *store) open(create bool) (bool, error) {
	if s.lock != nil && !s.stale() {
		return true, nil
	}
	// First use, or the files were removed or replaced while tend ran (a
	// state directory wiped by hand): read whatever is there now.
	s.closeFiles()
	s.everRead = false
	if create {
		if err := os.MkdirAll(s.dir, 0o755); err != nil {
			return false, err
		}
	} else if _, err := os.Stat(s.dir); errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	lock, err := os.OpenFile(filepath.Join(s.dir, lockFile), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return false, err
	}
	log, err := os.OpenFile(filepath.Join(s.dir, logFile), os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		lock.Close()
		return false, err
	}
	s.lock, s.log = lock, log
	return true, nil
}

func (s *store) closeFiles() {
	if s.lock != nil {
		s.lock.Close()
		s.log.Close()
		s.lock, s.log = nil, nil
	}
}

// close releases the files; the store opens them again when used.
func (s *store) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closeFiles()
}

func (s *store) flock(how int) error {
	for {
		err := syscall.Flock(int(s.lock.Fd()), how)
		if err != syscall.EINTR {
			return err
		}
	}
}

// read runs f on the records, fresh from the files, under a shared lock.
func (s *store) read(f func(map[string]map[string]replicas)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ok, err := s.open(false)
	if err != nil || !ok {
		if err == nil {
			f(nil)
		}
		return err
	}
	if err := s.flock(syscall.LOCK_SH); err != nil {
		return err
	}
	defer s.flock(syscall.LOCK_UN)
	if err := s.refresh(); err != nil {
		return err
	}
	f(s.owner)
	return nil
}

// write appends r to the log and applies it, under an exclusive lock.
func (s *store) write(r *record) error {
	line, err := json.Marshal(r)
	if err != nil {
		return err
	}
	line = append(line, '\n')
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.open(true); err != nil {
		return err
	}
	if err := s.flock(syscall.LOCK_EX); err != nil {
		return err
	}
	defer s.flock(syscall.LOCK_UN)
	if err := s.refresh(); err != nil {
		return err
	}
	if r.Deleted {
		if _, ok := s.owner[r.ManagedBy][r.Server][r.Replica]; !ok {
			return nil // nothing to remove
		}
	}
	if s.logSeen.size != s.logValid {
		// A line cut short by a crash: cut it off, so that this one
		// starts a line of its own.
		if err := s.log.Truncate(s.logValid); err != nil {
			return err
		}
	}
	if _, err := s.log.Write(line); err != nil {
		// A short write leaves a cut line, which the next reader skips
		// and the next writer cuts off.
		s.logSeen = fileStamp{ino: s.logSeen.ino, size: -1}
		return fmt.Errorf("recording in %s: %w", filepath.Join(s.dir, logFile), err)
	}
	s.logValid += int64(len(line))
	s.logLines++
	s.apply(r)
	if s.logLines >= max(minCompact, s.nRecords) {
		if err := s.compact(); err != nil {
			return err
		}
	}
	return s.seeLog()
}

// seeLog notes the log as this process left it.
func (s *store) seeLog() error {
	fi, err := s.log.Stat()
	if err != nil {
		return err
	}
	s.logSeen = stampOf(fi)
	return nil
}

// refresh reads the files again when they are not as this process last saw
// them. The caller holds the lock.
func (s *store) refresh() error {
	snap, err := stat(filepath.Join(s.dir, snapshotFile))
	if err != nil {
		return err
	}
	lg, err := stat(filepath.Join(s.dir, logFile))
	if err != nil {
		return err
	}
	if s.everRead && snap == s.snapSeen && lg == s.logSeen {
		return nil
	}
	owner := map[string]map[string]replicas{}
	n := 0
	apply := func(r *record) { n += applyTo(owner, r) }
	if _, _, err := readLines(filepath.Join(s.dir, snapshotFile), apply); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	valid, lines, err := readLines(filepath.Join(s.dir, logFile), apply)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	s.owner, s.nRecords, s.logLines, s.logValid = owner, n, lines, valid
	s.snapSeen, s.logSeen, s.everRead = snap, lg, true
	s.reloads++
	return nil
}

// readLines applies every whole line of the file, in order, and returns the
// length of the file up to its last whole line and how many lines that is.
// A last line without its newline was cut short by a crash and is skipped;
// any other line that is not a record is an error.
func readLines(path string, apply func(*record)) (int64, int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, err
	}
	var valid int64
	lines := 0
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			break // cut short
		}
		line := b[:i]
		b = b[i+1:]
		lines++
		r := new(record)
		if err := json.Unmarshal(line, r); err != nil {
			return 0, 0, fmt.Errorf("%s line %d is not a record of the null provider: %v", path, lines, err)
		}
		if r.Server == "" || r.ManagedBy == "" {
			return 0, 0, fmt.Errorf("%s line %d is not a record of the null provider: it names no server or no managed-by", path, lines)
		}
		apply(r)
		valid += int64(i + 1)
	}
	return valid, lines, nil
}

func (s *store) apply(r *record) { s.nRecords += applyTo(s.owner, r) }

// applyTo applies r and returns the change in the number of records.
func applyTo(owner map[string]map[string]replicas, r *record) int {
	servers := owner[r.ManagedBy]
	reps := servers[r.Server]
	_, had := reps[r.Replica]
	if r.Deleted {
		if !had {
			return 0
		}
		delete(reps, r.Replica)
		if len(reps) == 0 {
			delete(servers, r.Server)
		}
		if len(servers) == 0 {
			delete(owner, r.ManagedBy)
		}
		return -1
	}
	if servers == nil {
		servers = map[string]replicas{}
		owner[r.ManagedBy] = servers
	}
	if reps == nil {
		reps = replicas{}
		servers[r.Server] = reps
	}
	reps[r.Replica] = r
	if had {
		return 0
	}
	return 1
}

// compact writes every record to a new snapshot, renames it over the old
// one and empties the log. The caller holds the exclusive lock. A crash
// before the rename leaves the old snapshot and the whole log; after it,
// the log's lines are already in the snapshot, and reading them again over
// it changes nothing.
func (s *store) compact() error {
	tmp, err := os.CreateTemp(s.dir, snapshotFile+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after the rename, there is nothing to remove
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	w := bufio.NewWriterSize(tmp, 1<<16)
	enc := json.NewEncoder(w)
	for _, mb := range sortedKeys(s.owner) {
		servers := s.owner[mb]
		for _, srv := range sortedKeys(servers) {
			reps := servers[srv]
			for _, i := range sortedKeys(reps) {
				if err := enc.Encode(reps[i]); err != nil {
					tmp.Close()
					return err
				}
			}
		}
	}
	if err := w.Flush(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	snap := filepath.Join(s.dir, snapshotFile)
	if err := os.Rename(tmp.Name(), snap); err != nil {
		return err
	}
	if d, err := os.Open(s.dir); err == nil {
		err = d.Sync()
		d.Close()
		if err != nil {
			return err
		}
	}
	if err := s.log.Truncate(0); err != nil {
		return err
	}
	st, err := stat(snap)
	if err != nil {
		return err
	}
	s.snapSeen, s.logValid, s.logLines = st, 0, 0
	s.snapshots++
	return nil
}

func sortedKeys[K interface{ ~int | ~string }, V any](m map[K]V) []K {
	out := make([]K, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// stale reports whether the open log is no longer the file at its path.
func (s *store) stale() bool {
	open, err := s.log.Stat()
	if err != nil {
		return true
	}
	now, err := os.Stat(filepath.Join(s.dir, logFile))
	return err != nil || !os.SameFile(open, now)
}
