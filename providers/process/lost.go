package process

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// ErrLost is wrapped by the errors of Observe and StartReplica when
// replicas run whose instance directories are gone: tend's bookkeeping of
// them was removed (the state directory deleted, say), not the replicas.
var ErrLost = errors.New("tend lost track of running replicas")

// lostReplica is a replica whose supervisor runs while its instance
// directory is gone.
type lostReplica struct {
	dir      string
	server   string
	replica  int
	supPid   int
	childPid int // 0 when between restarts
}

// lostReplicas finds, in /proc, the supervisors of this user that run for
// an instance directory of managedBy under the provider's root (of server
// only, when server is set) whose spec.json is gone. A supervisor keeps
// its replica running when that happens (see the supervisor); this is how
// tend finds such replicas again. It reads /proc only.
func (p *Provider) lostReplicas(managedBy, server string) []lostReplica {
	base := filepath.Join(p.root, managedBy) + string(filepath.Separator)
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	// Most processes are not supervisors: their command line is all that
	// is read of them.
	var lost []lostReplica
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		args := readCmdline(pid)
		if len(args) != 3 || args[1] != superviseArg || !strings.HasPrefix(args[2], base) {
			continue
		}
		dir := args[2]
		parts := strings.Split(strings.TrimPrefix(dir, base), string(filepath.Separator))
		if len(parts) != 2 || (server != "" && parts[0] != server) {
			continue
		}
		n, err := strconv.Atoi(parts[1])
		if err != nil || n < 0 || !ownProcess(pid) {
			continue
		}
		if _, ok := live(pid); !ok {
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, specFile)); !errors.Is(err, os.ErrNotExist) {
			continue
		}
		lost = append(lost, lostReplica{dir: dir, server: parts[0], replica: n, supPid: pid})
	}
	if len(lost) > 0 {
		// The children, for the message: group leaders whose parent is a
		// lost supervisor.
		sups := map[int]*lostReplica{}
		for i := range lost {
			sups[lost[i].supPid] = &lost[i]
		}
		for _, e := range entries {
			pid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			if st, ok := live(pid); ok && st.PGID == pid && sups[st.PPID] != nil {
				sups[st.PPID].childPid = pid
			}
		}
	}
	slices.SortFunc(lost, func(a, b lostReplica) int {
		if c := strings.Compare(a.server, b.server); c != 0 {
			return c
		}
		return a.replica - b.replica
	})
	return lost
}

// supervisorsOf lists the live supervisors of this user that run for dir,
// by their command line.
func supervisorsOf(dir string) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || !ownProcess(pid) {
			continue
		}
		if args := readCmdline(pid); len(args) == 3 && args[1] == superviseArg && args[2] == dir {
			if _, ok := live(pid); ok {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

// ownProcess reports whether pid runs as this user.
func ownProcess(pid int) bool {
	fi, err := os.Stat("/proc/" + strconv.Itoa(pid))
	if err != nil {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && st.Uid == uint32(os.Getuid())
}

// lostError says which replicas tend lost track of, why, and how to
// recover.
func (p *Provider) lostError(lost []lostReplica) error {
	var names, pids []string
	for _, l := range lost {
		who := fmt.Sprintf("%s replica %d (", l.server, l.replica)
		if l.childPid > 0 {
			who += fmt.Sprintf("pid %d, ", l.childPid)
		}
		names = append(names, who+fmt.Sprintf("supervisor pid %d)", l.supPid))
		pids = append(pids, strconv.Itoa(l.supPid))
	}
	removed, path := p.removedDir(lost[0].dir)
	n := len(lost)
	them := plural(n, "it", "them")
	return fmt.Errorf("%w: %s was removed while %d %s ran; %s running, but tend lost track of %s: %s. "+
		"Put %s back from a backup and tend finds %s again; or stop %s (kill %s: each supervisor stops its replica within the stop timeout) and run tend again to start %s anew",
		ErrLost, removed, n, plural(n, "replica", "replicas"), plural(n, "it keeps", "they keep"), them,
		strings.Join(names, ", "), path, them, them, strings.Join(pids, " "), them)
}

// removedDir finds the outermost directory of dir that is gone: the state
// directory, the provider's root, or the instance directory itself (once
// a later tend made the directories above it again). It returns what it
// is, as "the state directory PATH", and its path.
func (p *Provider) removedDir(dir string) (what, path string) {
	gone := dir
	for parent := filepath.Dir(gone); parent != gone && !exists(parent); parent = filepath.Dir(gone) {
		gone = parent
	}
	switch gone {
	case p.stateDir:
		return "the state directory " + gone, gone
	case p.root:
		return "the provider's directory " + gone, gone
	case dir:
		return "the instance directory " + gone, gone
	}
	return "the directory " + gone, gone
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
