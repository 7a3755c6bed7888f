package process

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// procStat is the part of /proc/PID/stat the provider uses.
type procStat struct {
	State byte
	PPID  int
	PGID  int
	// UTime and STime are CPU times in clock ticks (USER_HZ, 100 on Linux).
	UTime, STime uint64
	// StartTicks is when the process started, in clock ticks after boot.
	StartTicks uint64
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat times (100 on Linux).
const clockTicks = 100

// startTime is when the process started, by the wall clock.
func (st procStat) startTime() time.Time {
	bt := bootTime()
	if bt.IsZero() {
		return time.Time{}
	}
	return bt.Add(time.Duration(st.StartTicks) * time.Second / clockTicks)
}

// bootTime reads btime from /proc/stat.
func bootTime() time.Time {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return time.Time{}
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "btime "); ok {
			if n, err := strconv.ParseInt(strings.TrimSpace(rest), 10, 64); err == nil {
				return time.Unix(n, 0)
			}
		}
	}
	return time.Time{}
}

// readStat parses /proc/PID/stat. The command name (field 2) may hold
// spaces and parentheses, so the fields are read after its last ')'.
func readStat(pid int) (procStat, error) {
	var st procStat
	if pid <= 0 {
		return st, errors.New("no pid")
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return st, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return st, errors.New("malformed stat")
	}
	f := strings.Fields(string(b[i+2:]))
	// f[0] is field 3 (state); field N is f[N-3].
	if len(f) < 20 {
		return st, errors.New("malformed stat")
	}
	st.State = f[0][0]
	st.PPID, _ = strconv.Atoi(f[1])
	st.PGID, _ = strconv.Atoi(f[2])
	st.UTime, _ = strconv.ParseUint(f[11], 10, 64)
	st.STime, _ = strconv.ParseUint(f[12], 10, 64)
	st.StartTicks, _ = strconv.ParseUint(f[19], 10, 64)
	return st, nil
}

// live reports whether pid is a process that has not exited (a zombie has
// exited: it only waits for its parent to collect its status).
func live(pid int) (procStat, bool) {
	st, err := readStat(pid)
	if err != nil || st.State == 'Z' || st.State == 'X' {
		return st, false
	}
	return st, true
}

// readCmdline returns the argv of pid, or nil when it cannot be read (no
// such process, a zombie, a kernel thread).
func readCmdline(pid int) []string {
	if pid <= 0 {
		return nil
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil || len(b) == 0 {
		return nil
	}
	b = bytes.TrimSuffix(b, []byte{0})
	return strings.Split(string(b), "\x00")
}

// procCwd returns the working directory of pid, if it can be read.
func procCwd(pid int) string {
	s, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/cwd")
	if err != nil {
		return ""
	}
	return s
}

// isSupervisor reports whether pid is the supervisor of instDir: a live
// process whose command line is exactly EXE __tend-supervise INSTDIR, where
// EXE is one of exes (this executable, or the one recorded when the
// supervisor was started). This guards every signal against pid reuse.
func isSupervisor(pid int, instDir string, exes ...string) bool {
	if _, ok := live(pid); !ok {
		return false
	}
	args := readCmdline(pid)
	if len(args) != 3 || args[1] != superviseArg || args[2] != instDir {
		return false
	}
	for _, e := range exes {
		if e != "" && args[0] == e {
			return true
		}
	}
	return false
}

// isChild reports whether pid is the main process of the replica in
// instDir: a live process group leader that the supervisor supPid started.
// Once the supervisor is gone (and the child was reparented), it must have
// started when status.json says the child did (pid reuse yields another
// start time) and still run in the instance's directory or with the
// recorded command line.
func isChild(pid, supPid int, instDir string, argv []string, startedAt time.Time) bool {
	st, ok := live(pid)
	if !ok || st.PGID != pid {
		return false
	}
	if supPid > 0 && st.PPID == supPid {
		return true
	}
	if startedAt.IsZero() {
		return false
	}
	if d := st.startTime().Sub(startedAt); d < -childStartSlack || d > childStartSlack {
		return false
	}
	if cwd := procCwd(pid); cwd != "" && within(cwd, instDir) {
		return true
	}
	return len(argv) > 0 && slices.Equal(readCmdline(pid), argv)
}

// childStartSlack is how far the kernel's start time of a child may be from
// the one the supervisor recorded.
const childStartSlack = 3 * time.Second

// within reports whether path is dir or inside it, symbolic links in dir
// resolved (the kernel reports a resolved cwd).
func within(path, dir string) bool {
	dirs := []string{dir}
	if real, err := filepath.EvalSymlinks(dir); err == nil && real != dir {
		dirs = append(dirs, real)
	}
	for _, d := range dirs {
		if path == d || strings.HasPrefix(path, d+string(filepath.Separator)) {
			return true
		}
	}
	return false
}

// signalGroup sends sig to the process group pgid, ignoring a group that no
// longer exists.
func signalGroup(pgid int, sig syscall.Signal) {
	if pgid > 1 {
		_ = syscall.Kill(-pgid, sig)
	}
}
