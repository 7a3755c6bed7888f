package supervisor

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"sync"
	"syscall"
	"time"

	"github.com/tendhq/tend/providers/internal/hostfs"
)

// Supervisor timing.
const (
	backoffMin    = 500 * time.Millisecond
	backoffMax    = 30 * time.Second
	backoffReset  = 60 * time.Second // up this long, the next restart is quick again
	crashWindow   = 60 * time.Second
	crashExits    = 3               // exits within crashWindow that make "crashing"
	runningAfter  = time.Second     // up this long counts as running
	housekeeping  = time.Second     // how often the supervisor looks around
	pipeWaitDelay = 2 * time.Second // how long output pipes may outlive the child
	memoryEvery   = 5 * time.Minute // how often it returns its free memory
)

// DefaultStopTimeout is how long a stopping child gets when neither
// stop.json nor spec.json says.
const DefaultStopTimeout = 10 * time.Second

// MaybeRun runs the supervisor of one replica when this process was
// started as one (PROGRAM __tend-supervise INSTANCE_DIR), and then exits;
// it returns at once otherwise.
func MaybeRun() {
	if len(os.Args) < 2 || os.Args[1] != Arg {
		return
	}
	if len(os.Args) != 3 {
		fmt.Fprintf(os.Stderr, "usage: %s %s INSTANCE_DIR\n", os.Args[0], Arg)
		os.Exit(2)
	}
	go returnMemory()
	os.Exit(Run(os.Args[2]))
}

// returnMemory collects the garbage and gives the free memory back to the
// system at once, and then every memoryEvery. A supervisor allocates some
// 600 bytes a second for as long as its replica runs; left to the
// runtime, its heap would grow to the collector's least goal, 4 MiB, in a
// couple of hours, and those pages would stay touched: most of what a
// supervisor would cost. Collected every 5 minutes it grows by some
// 180 KiB at most, and a collection of so small a heap costs about a
// millisecond of CPU.
func returnMemory() {
	for {
		debug.FreeOSMemory()
		time.Sleep(memoryEvery)
	}
}

type supervisor struct {
	dir  string
	ls   Spec
	argv []string
	env  []string
	red  redactor
	log  *log.Logger

	stdout, stderr *rotatingFile

	st       Status
	written  Status
	exits    []time.Time // exit times within crashWindow
	lastExit string      // how the child last ended, for messages
	retryAt  time.Time   // when the next start is due, while waiting
	lost     bool        // the instance directory is gone (logged once)
}

// ChildExit is how one run of a child ended.
type ChildExit struct {
	Code int    // the exit code, 128+N for signal N
	Text string // "exit code 3", "killed by SIGKILL (exit code 137)"
}

// Run supervises the replica of the instance directory dir until it is
// told to stop (SIGTERM or SIGINT), or its directory is gone and its child
// has exited, and returns the exit code of the supervisor.
func Run(dir string) int {
	lg := log.New(os.Stderr, "", log.LstdFlags)
	s, err := loadSupervisor(dir, lg)
	if err != nil {
		lg.Printf("cannot supervise %s: %v", dir, err)
		st := Status{SupervisorPID: os.Getpid(), State: "crashing", Message: "the supervisor cannot start: " + err.Error(), UpdatedAt: time.Now()}
		_ = hostfs.WriteJSON(filepath.Join(dir, StatusFile), st, 0o644)
		return 1
	}
	defer s.stdout.Close()
	defer s.stderr.Close()
	return s.run()
}

func loadSupervisor(dir string, lg *log.Logger) (*supervisor, error) {
	s := &supervisor{dir: dir, log: lg}
	if err := hostfs.ReadJSON(filepath.Join(dir, SpecFile), &s.ls); err != nil {
		return nil, err
	}
	if s.ls.Protocol > Protocol {
		exe, _ := os.Executable()
		return nil, fmt.Errorf("%s is of protocol %d, and this supervisor (%s) knows protocol %d at most: it is older than the tend that started it; "+
			"build or install tend and %s from one release (make build, or go install github.com/tendhq/tend/cmd/...)", SpecFile, s.ls.Protocol, exe, Protocol, Program)
	}
	b, err := os.ReadFile(filepath.Join(dir, s.ls.EnvFile))
	if err != nil {
		return nil, err
	}
	env, err := DecodeEnv(b)
	if err != nil {
		return nil, err
	}
	for _, k := range s.ls.SensitiveEnv {
		s.red.add(env[k])
	}
	s.env = EnvList(env)
	s.argv = s.ls.Argv
	if s.ls.ArgvFile != "" {
		var argv []string
		if err := hostfs.ReadJSON(filepath.Join(dir, s.ls.ArgvFile), &argv); err != nil {
			return nil, err
		}
		s.argv = argv
		for _, i := range s.ls.SensitiveArgs {
			if i >= 0 && i < len(argv) {
				s.red.add(argv[i])
			}
		}
	}
	if len(s.argv) == 0 {
		return nil, errors.New("no command")
	}
	if s.stdout, err = openRotating(filepath.Join(dir, StdoutLog), MaxLogSize); err != nil {
		return nil, err
	}
	if s.stderr, err = openRotating(filepath.Join(dir, StderrLog), MaxLogSize); err != nil {
		s.stdout.Close()
		return nil, err
	}
	s.st = Status{SupervisorPID: os.Getpid(), State: "starting"}
	return s, nil
}

func (s *supervisor) run() int {
	sigc := make(chan os.Signal, 1)
	signal.Notify(sigc, syscall.SIGTERM, syscall.SIGINT)
	signal.Ignore(syscall.SIGHUP, syscall.SIGPIPE)
	tick := time.NewTicker(housekeeping)
	defer tick.Stop()

	s.log.Printf("supervising %s: %s", s.dir, s.red.String(fmt.Sprint(s.ls.Argv)))
	backoff := backoffMin
	for first := true; ; first = false {
		if !first {
			s.st.Restarts++
		}
		startedAt := time.Now()
		cmd, done, err := s.start()
		var ex ChildExit
		if err != nil {
			ex = ChildExit{Code: 127, Text: "could not start: " + s.red.String(err.Error())}
			// The replica's output says it, as a shell would ("notes: not
			// found"): what reads a failed replica's output reads why.
			fmt.Fprintf(s.stderr, "tend: %s\n", ex.Text)
		} else {
			pid := cmd.Process.Pid
			s.log.Printf("started pid %d", pid)
			s.st.ChildPID, s.st.ChildStartedAt = pid, startedAt
			s.update()
			up := time.NewTimer(runningAfter)
		wait:
			for {
				select {
				case ex = <-done:
					break wait
				case <-up.C:
					s.update()
				case <-tick.C:
					if s.gone() && !s.lost {
						// tend's bookkeeping is gone (the state directory
						// removed, say), not the replica: it keeps running.
						// Observe finds this supervisor by its command line
						// and reports the replica lost; SIGTERM still stops it.
						s.lost = true
						s.log.Printf("the instance directory is gone; pid %d keeps running", pid)
					}
					s.update()
				case sig := <-sigc:
					s.log.Printf("received %v; stopping pid %d", sig, pid)
					s.stopped(s.stopChild(pid, done, s.grace()))
					return 0
				}
			}
			up.Stop()
		}
		now := time.Now()
		if now.Sub(startedAt) >= backoffReset {
			backoff = backoffMin
		}
		delay := backoff
		backoff = min(backoff*2, backoffMax)
		s.exited(ex, now)
		s.retryAt = now.Add(delay)
		s.log.Printf("%s; restarting in %v", s.lastExit, delay)
		s.update()

		retry := time.NewTimer(delay)
	backoffWait:
		for {
			select {
			case <-retry.C:
				break backoffWait
			case <-tick.C:
				if s.gone() {
					// Nothing runs, and nothing could restart: the
					// child's files and working directory are gone.
					s.log.Printf("the instance directory is gone; exiting")
					return 0
				}
				s.update()
			case sig := <-sigc:
				s.log.Printf("received %v while waiting to restart; stopping", sig)
				retry.Stop()
				s.stopped(nil)
				return 0
			}
		}
		s.retryAt = time.Time{}
	}
}

// start starts the child in its own process group; done receives how it
// ended, once its leftovers in the group are killed too.
func (s *supervisor) start() (*exec.Cmd, <-chan ChildExit, error) {
	if want := s.ls.ProgramSHA256; want != "" {
		if err := checkProgram(s.argv[0], want); err != nil {
			return nil, nil, err
		}
	}
	cmd := &exec.Cmd{
		Path:        s.argv[0],
		Args:        s.argv,
		Env:         s.env,
		Dir:         s.ls.WorkDir,
		Stdout:      s.stdout,
		Stderr:      s.stderr,
		SysProcAttr: &syscall.SysProcAttr{Setpgid: true},
		WaitDelay:   pipeWaitDelay,
	}
	if err := cmd.Start(); err != nil {
		return nil, nil, err
	}
	done := make(chan ChildExit, 1)
	go func() {
		_ = cmd.Wait()
		// The group outlives its leader only by leftovers (a forked
		// helper, a daemonised grandchild): they go with it, or they would
		// hold the port the next start needs.
		signalGroup(cmd.Process.Pid, syscall.SIGKILL)
		done <- DescribeExit(cmd.ProcessState)
	}()
	return cmd, done, nil
}

// stopChild stops the child's process group: SIGTERM, then SIGKILL after
// grace.
func (s *supervisor) stopChild(pid int, done <-chan ChildExit, grace time.Duration) *ChildExit {
	s.st.Message = "stopping"
	s.writeStatus()
	signalGroup(pid, syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	var ex ChildExit
	select {
	case ex = <-done:
	case <-t.C:
		s.log.Printf("pid %d did not stop within %v; killing it", pid, grace)
		signalGroup(pid, syscall.SIGKILL)
		ex = <-done
	}
	return &ex
}

// stopped writes the final status.
func (s *supervisor) stopped(ex *ChildExit) {
	if ex != nil {
		code := ex.Code
		s.st.LastExitCode, s.st.LastExitAt = &code, time.Now()
		s.log.Printf("stopped (%s)", ex.Text)
	} else {
		s.log.Printf("stopped")
	}
	s.st.ChildPID = 0
	s.st.State = "exited"
	s.st.Message = "stopped by tend"
	s.writeStatus()
}

func (s *supervisor) exited(ex ChildExit, at time.Time) {
	code := ex.Code
	s.st.ChildPID = 0
	s.st.LastExitCode, s.st.LastExitAt = &code, at
	s.lastExit = ex.Text
	s.exits = append(s.exits, at)
}

// grace is how long a stopping child gets: what StopReplica asked for, or
// the provider's stop timeout.
func (s *supervisor) grace() time.Duration {
	var req StopRequest
	if err := hostfs.ReadJSON(filepath.Join(s.dir, StopFile), &req); err == nil && req.Grace > 0 {
		return time.Duration(req.Grace)
	}
	if s.ls.StopTimeout > 0 {
		return time.Duration(s.ls.StopTimeout)
	}
	return DefaultStopTimeout
}

// gone reports whether the instance directory was removed under the
// supervisor.
func (s *supervisor) gone() bool {
	_, err := os.Stat(filepath.Join(s.dir, SpecFile))
	return errors.Is(err, os.ErrNotExist)
}

// update recomputes the state and writes status.json if anything changed.
func (s *supervisor) update() {
	now := time.Now()
	keep := s.exits[:0]
	for _, t := range s.exits {
		if now.Sub(t) < crashWindow {
			keep = append(keep, t)
		}
	}
	s.exits = keep
	running := s.st.ChildPID != 0
	var msg string
	switch {
	case len(s.exits) >= crashExits:
		s.st.State = "crashing"
		msg = fmt.Sprintf("exited %s in the last minute; last: %s", times(len(s.exits)), s.lastExit)
		if !running && !s.retryAt.IsZero() {
			msg += fmt.Sprintf("; restarting in %v", s.retryAt.Sub(s.st.LastExitAt).Round(100*time.Millisecond))
		}
	case running:
		if now.Sub(s.st.ChildStartedAt) >= runningAfter {
			s.st.State = "running"
		} else {
			s.st.State = "starting"
		}
		if s.st.Restarts > 0 {
			msg = fmt.Sprintf("restarted %s; last exit: %s", times(s.st.Restarts), s.lastExit)
		}
	default:
		s.st.State = "exited"
		msg = s.lastExit
		if !s.retryAt.IsZero() {
			msg += fmt.Sprintf("; restarting in %v", s.retryAt.Sub(s.st.LastExitAt).Round(100*time.Millisecond))
		}
	}
	s.st.Message = msg
	s.writeStatus()
}

func (s *supervisor) writeStatus() {
	cmp := s.st
	cmp.UpdatedAt = s.written.UpdatedAt
	if s.written.State != "" && statusEqual(cmp, s.written) {
		return
	}
	s.st.UpdatedAt = time.Now()
	if err := hostfs.WriteJSON(filepath.Join(s.dir, StatusFile), s.st, 0o644); err != nil {
		s.log.Printf("cannot write the status: %v", err)
		return
	}
	s.written = s.st
}

func statusEqual(a, b Status) bool {
	ac, bc := a.LastExitCode, b.LastExitCode
	a.LastExitCode, b.LastExitCode = nil, nil
	if a != b {
		return false
	}
	if (ac == nil) != (bc == nil) {
		return false
	}
	return ac == nil || *ac == *bc
}

func times(n int) string {
	switch n {
	case 1:
		return "once"
	case 2:
		return "twice"
	}
	return fmt.Sprintf("%d times", n)
}

// DescribeExit turns a wait status into an exit code (128+N for a signal,
// as shells do) and a phrase.
func DescribeExit(ps *os.ProcessState) ChildExit {
	if ps == nil {
		return ChildExit{Code: -1, Text: "ended in an unknown way"}
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		sig := ws.Signal()
		return ChildExit{Code: 128 + int(sig), Text: fmt.Sprintf("killed by %s (exit code %d)", signalName(sig), 128+int(sig))}
	}
	return ChildExit{Code: ps.ExitCode(), Text: fmt.Sprintf("exit code %d", ps.ExitCode())}
}

func signalName(sig syscall.Signal) string {
	names := map[syscall.Signal]string{
		syscall.SIGHUP: "SIGHUP", syscall.SIGINT: "SIGINT", syscall.SIGQUIT: "SIGQUIT",
		syscall.SIGILL: "SIGILL", syscall.SIGABRT: "SIGABRT", syscall.SIGBUS: "SIGBUS",
		syscall.SIGFPE: "SIGFPE", syscall.SIGKILL: "SIGKILL", syscall.SIGSEGV: "SIGSEGV",
		syscall.SIGPIPE: "SIGPIPE", syscall.SIGTERM: "SIGTERM", syscall.SIGUSR1: "SIGUSR1",
		syscall.SIGUSR2: "SIGUSR2", syscall.SIGXCPU: "SIGXCPU",
	}
	if n, ok := names[sig]; ok {
		return n
	}
	return fmt.Sprintf("signal %d", int(sig))
}

// rotatingFile appends to a log file, moving it to PATH.1 once it would
// grow past max.
type rotatingFile struct {
	mu   sync.Mutex
	path string
	max  int64
	f    *os.File
	size int64
}

func openRotating(path string, max int64) (*rotatingFile, error) {
	r := &rotatingFile{path: path, max: max}
	return r, r.open()
}

func (r *rotatingFile) open() error {
	f, err := os.OpenFile(r.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	r.f, r.size = f, fi.Size()
	return nil
}

func (r *rotatingFile) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f == nil {
		return 0, os.ErrClosed
	}
	if r.size > 0 && r.size+int64(len(p)) > r.max {
		r.f.Close()
		r.f = nil
		// Should the rename fail, the file is reopened and grows on.
		_ = os.Rename(r.path, r.path+".1")
		if err := r.open(); err != nil {
			return 0, err
		}
	}
	n, err := r.f.Write(p)
	r.size += int64(n)
	return n, err
}

func (r *rotatingFile) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f == nil {
		return nil
	}
	err := r.f.Close()
	r.f = nil
	return err
}

// signalGroup sends sig to the process group pgid, ignoring a group that no
// longer exists.
func signalGroup(pgid int, sig syscall.Signal) {
	if pgid > 1 {
		_ = syscall.Kill(-pgid, sig)
	}
}

// checkProgram refuses a program whose sha256 is not the locked one (a
// build replaced under its version since tend started the replica).
func checkProgram(path, want string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return err
	}
	if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != want {
		return fmt.Errorf("the build %s has %s, and the lock file records %s: the build was replaced under its version", path, got, want)
	}
	return nil
}
