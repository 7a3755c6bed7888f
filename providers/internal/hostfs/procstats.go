package hostfs

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
)

// procRoot is where /proc is; the tests point it at a fake tree.
var procRoot = "/proc"

func procPath(pid int, rest string) string {
	return procRoot + "/" + strconv.Itoa(pid) + "/" + rest
}

// ProcTree returns pid and every process descended from it (by parent
// pid, from one scan of /proc), pid first. A process that left the tree
// (re-parented to init once its parent exited, as a daemon that forks
// twice is) is not found. A scan costs a read of every process's stat
// file: a few milliseconds on a host of some hundred processes.
func ProcTree(pid int) []int {
	ents, err := os.ReadDir(procRoot)
	if err != nil {
		return []int{pid}
	}
	children := map[int][]int{}
	for _, e := range ents {
		c, err := strconv.Atoi(e.Name())
		if err != nil || c == pid {
			continue
		}
		if pp, ok := parentPID(c); ok {
			children[pp] = append(children[pp], c)
		}
	}
	out := []int{pid}
	seen := map[int]bool{pid: true}
	for i := 0; i < len(out); i++ {
		for _, c := range children[out[i]] {
			if !seen[c] {
				seen[c] = true
				out = append(out, c)
			}
		}
	}
	return out
}

// parentPID reads field 4 of /proc/PID/stat, after the command name (which
// may hold spaces and parentheses).
func parentPID(pid int) (int, bool) {
	b, err := os.ReadFile(procPath(pid, "stat"))
	if err != nil {
		return 0, false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return 0, false
	}
	f := strings.Fields(string(b[i+2:]))
	if len(f) < 2 {
		return 0, false
	}
	pp, err := strconv.Atoi(f[1])
	return pp, err == nil
}

// Threads returns the number of threads of pid, from the Threads: line of
// /proc/PID/status.
func Threads(pid int) (int, error) {
	b, err := os.ReadFile(procPath(pid, "status"))
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "Threads:"); ok {
			return strconv.Atoi(strings.TrimSpace(rest))
		}
	}
	return 0, errors.New("no Threads line in " + procPath(pid, "status"))
}

// TreeThreads adds up the threads of pids (a ProcTree). The first pid must
// be readable; the others may have exited since they were listed.
func TreeThreads(pids []int) (int, error) {
	n := 0
	for i, pid := range pids {
		t, err := Threads(pid)
		if err != nil {
			if i == 0 {
				return 0, err
			}
			continue
		}
		n += t
	}
	return n, nil
}

// TreeCounts are the threads and the established TCP connections of a
// process tree, each with whether it could be read.
type TreeCounts struct {
	Threads        int
	HasThreads     bool
	Connections    int
	HasConnections bool
}

// CountTree counts the threads and the established TCP connections of pid
// and its descendants (ProcTree, TreeThreads, EstablishedTCP).
func CountTree(pid int) TreeCounts {
	var c TreeCounts
	tree := ProcTree(pid)
	if n, err := TreeThreads(tree); err == nil {
		c.Threads, c.HasThreads = n, true
	}
	if n, err := EstablishedTCP(tree); err == nil {
		c.Connections, c.HasConnections = n, true
	}
	return c
}

// tcpEstablished is the st column of /proc/net/tcp for ESTABLISHED.
const tcpEstablished = "01"

// EstablishedTCP counts the TCP connections, IPv4 and IPv6, in state
// ESTABLISHED that the processes pids hold: the socket inodes among their
// open files (the links socket:[INODE] in /proc/PID/fd) matched against
// the rows of /proc/PID/net/tcp and tcp6 of each network namespace they
// are in. A socket several of them hold (inherited across a fork) counts
// once. The first pid must be readable; the others may have exited since
// they were listed. Reading the open files of another user's process
// takes root (or CAP_SYS_PTRACE): that is an error, not a count of 0.
func EstablishedTCP(pids []int) (int, error) {
	if len(pids) == 0 {
		return 0, errors.New("no process")
	}
	inodes := map[uint64]bool{}
	nets := map[string]int{} // network namespace → a pid in it
	for i, pid := range pids {
		err := socketInodes(pid, inodes)
		switch {
		case err == nil:
		case i > 0 && errors.Is(err, fs.ErrNotExist):
			continue
		default:
			return 0, fmt.Errorf("read the open files of process %d: %w", pid, err)
		}
		ns, err := os.Readlink(procPath(pid, "ns/net"))
		if err != nil {
			ns = "pid:" + strconv.Itoa(pid) // unknown: read its own tables
		}
		if _, ok := nets[ns]; !ok {
			nets[ns] = pid
		}
	}
	if len(inodes) == 0 {
		return 0, nil
	}
	n := 0
	for _, pid := range nets {
		for _, table := range []string{"net/tcp", "net/tcp6"} {
			err := scanTCP(procPath(pid, table), func(st string, inode uint64) {
				if st == tcpEstablished && inodes[inode] {
					delete(inodes, inode) // counted once
					n++
				}
			})
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return 0, err
			}
		}
	}
	return n, nil
}

// NetnsEstablishedTCP counts every TCP connection in state ESTABLISHED of
// the network namespace pid is in, whoever holds it: the connections of a
// container that has a namespace of its own. It needs no access to the
// processes' open files.
func NetnsEstablishedTCP(pid int) (int, error) {
	n := 0
	for _, table := range []string{"net/tcp", "net/tcp6"} {
		err := scanTCP(procPath(pid, table), func(st string, _ uint64) {
			if st == tcpEstablished {
				n++
			}
		})
		if err != nil && (table == "net/tcp" || !errors.Is(err, fs.ErrNotExist)) {
			return 0, err
		}
	}
	return n, nil
}

// socketInodes adds the inodes of the sockets pid has open to set.
func socketInodes(pid int, set map[uint64]bool) error {
	dir := procPath(pid, "fd")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		l, err := os.Readlink(dir + "/" + e.Name())
		if err != nil {
			continue // closed since the listing
		}
		if s, ok := strings.CutPrefix(l, "socket:["); ok {
			if ino, err := strconv.ParseUint(strings.TrimSuffix(s, "]"), 10, 64); err == nil {
				set[ino] = true
			}
		}
	}
	return nil
}

// scanTCP calls row with the state (st, two hex digits) and the socket
// inode of every row of a /proc/net/tcp or tcp6 table.
func scanTCP(path string, row func(st string, inode uint64)) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return parseTCP(f, row)
}

// parseTCP reads a /proc/net/tcp table: a header line, then rows of
// "sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt
// uid timeout inode ...".
func parseTCP(r io.Reader, row func(st string, inode uint64)) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	header := true
	for sc.Scan() {
		if header {
			header = false
			continue
		}
		f := strings.Fields(sc.Text())
		if len(f) < 10 {
			continue
		}
		ino, err := strconv.ParseUint(f[9], 10, 64)
		if err != nil {
			continue
		}
		row(f[3], ino)
	}
	return sc.Err()
}
