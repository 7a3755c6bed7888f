package process

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/tendhq/tend/providers"
	"github.com/tendhq/tend/providers/internal/hostfs"
	"github.com/tendhq/tend/providers/process/supervisor"
)

// Exec runs a one-off task: req.Command, expanded with the replica's
// environment, with that environment, in the instance's work dir (or, with
// no instance, in a fresh directory holding the server's config files,
// removed afterwards). The task and its process group are killed when ctx
// ends.
func (p *Provider) Exec(ctx context.Context, req providers.ExecRequest) providers.ExecResponse {
	code, err := p.exec(ctx, req)
	return providers.ExecResponse{ExitCode: code, Err: err}
}

func (p *Provider) exec(ctx context.Context, req providers.ExecRequest) (int, error) {
	if len(req.Command) == 0 {
		return -1, errors.New("exec: no command")
	}
	var (
		env     map[string]string
		red     redactor
		workDir string
		l       *launch
	)
	replica := 0
	if req.Instance != nil {
		replica = req.Instance.Replica
	}
	hasSpec := req.Desired != nil && req.Desired.Server != nil
	if hasSpec {
		managedBy := p.managedByOf(req.Desired.ManagedBy)
		if err := checkComponent("managed-by identity", managedBy); err != nil {
			return -1, err
		}
		if err := checkComponent("server name", req.Desired.Server.Name); err != nil {
			return -1, err
		}
		var err error
		if l, err = p.prepare(req.Desired, managedBy, replica); err != nil {
			return -1, fmt.Errorf("exec: %w", err)
		}
		for _, v := range l.volumes {
			if err := os.MkdirAll(v.HostDir, 0o700); err != nil {
				return -1, fmt.Errorf("exec: volume %s: %w", v.Name, err)
			}
		}
		env, red = revealEnv(l.env), l.red
	}
	if req.Instance != nil {
		if dir, err := p.instDirOf(*req.Instance); err == nil {
			f := readInstance(dir)
			if f.lsErr == nil {
				if fi, err := os.Stat(f.ls.WorkDir); err == nil && fi.IsDir() {
					workDir = f.ls.WorkDir
				}
				if env == nil {
					b, err := os.ReadFile(filepath.Join(dir, f.ls.EnvFile))
					if err != nil {
						return -1, fmt.Errorf("exec: the replica's environment: %w", err)
					}
					if env, err = supervisor.DecodeEnv(b); err != nil {
						return -1, fmt.Errorf("exec: %w", err)
					}
					for _, k := range f.ls.SensitiveEnv {
						red.Add(env[k])
					}
				}
			}
		}
	}
	if env == nil {
		return -1, errors.New("exec: neither a server spec nor a running replica to run the task for")
	}
	if workDir == "" {
		if !hasSpec {
			return -1, errors.New("exec: the replica's directory is gone and no server spec was given")
		}
		tasks := filepath.Join(p.root, ".tasks")
		if err := os.MkdirAll(tasks, 0o700); err != nil {
			return -1, fmt.Errorf("exec: %w", err)
		}
		tmp, err := os.MkdirTemp(tasks, req.Desired.Server.Name+"-")
		if err != nil {
			return -1, fmt.Errorf("exec: %w", err)
		}
		defer os.RemoveAll(tmp)
		workDir = filepath.Join(tmp, workDirName)
		if l.workSub != "" {
			workDir = filepath.Join(workDir, l.workSub)
		}
		if err := os.MkdirAll(workDir, 0o755); err != nil {
			return -1, fmt.Errorf("exec: %w", err)
		}
		if _, err := writeConfigs(workDir, l.configs); err != nil {
			return -1, fmt.Errorf("exec: %w", err)
		}
	}

	argv := make([]string, len(req.Command))
	for i, a := range req.Command {
		argv[i] = providers.Expand(a, env)
	}
	// The command arrives revealed, so which of its items are secret is
	// not known here: errors name no part of it (the caller, who has the
	// values, can).
	prog, err := resolveProgram(argv[0], env["PATH"])
	if err != nil {
		return -1, errors.New("exec: the task's program is not in PATH")
	}
	argv[0] = prog
	cmd := exec.CommandContext(ctx, prog)
	cmd.Args = argv
	cmd.Env = supervisor.EnvList(env)
	cmd.Dir = workDir
	cmd.Stdout, cmd.Stderr = req.Stdout, req.Stderr
	var stdinW *os.File
	if req.Stdin != nil {
		// A pipe of our own, so that Wait returns when the task ends
		// rather than when its input does (exec would wait for the copy).
		r, w, err := os.Pipe()
		if err != nil {
			return -1, fmt.Errorf("exec: %w", err)
		}
		cmd.Stdin, stdinW = r, w
		defer r.Close()
		go func() {
			_, _ = io.Copy(w, req.Stdin)
			w.Close()
		}()
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		signalGroup(cmd.Process.Pid, syscall.SIGKILL)
		return nil
	}
	cmd.WaitDelay = pipeWaitDelay
	if err := cmd.Start(); err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return -1, red.Error(fmt.Errorf("exec: cannot start the task's program: %w", err))
	}
	_ = cmd.Wait()
	if stdinW != nil {
		stdinW.Close() // the copy of the input ends at its next write
	}
	// Whatever the task left in its group ends with it.
	signalGroup(cmd.Process.Pid, syscall.SIGKILL)
	code := supervisor.DescribeExit(cmd.ProcessState).Code
	if err := ctx.Err(); err != nil {
		return code, fmt.Errorf("exec: the task was killed: %w", err)
	}
	return code, nil
}

// Logs returns the last lines lines (all, if lines <= 0) of the replica's
// stdout and of its stderr; when both have output, each comes under a
// "==> stdout <==" / "==> stderr <==" header.
func (p *Provider) Logs(ctx context.Context, inst providers.Instance, lines int) ([]byte, error) {
	dir, err := p.instDirOf(inst)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("logs of %s replica %d: no such instance", inst.Server, inst.Replica)
	}
	out, err := tailLog(filepath.Join(dir, stdoutLog), lines)
	if err != nil {
		return nil, err
	}
	errOut, err := tailLog(filepath.Join(dir, stderrLog), lines)
	if err != nil {
		return nil, err
	}
	switch {
	case len(out) == 0:
		return errOut, nil
	case len(errOut) == 0:
		return out, nil
	}
	var b bytes.Buffer
	b.WriteString("==> stdout <==\n")
	b.Write(out)
	if !bytes.HasSuffix(out, []byte("\n")) {
		b.WriteByte('\n')
	}
	b.WriteString("\n==> stderr <==\n")
	b.Write(errOut)
	return b.Bytes(), nil
}

// tailLog returns the last n lines of a log, reaching into its rotated
// predecessor (PATH.1) when the current file has fewer.
func tailLog(path string, n int) ([]byte, error) {
	cur, err := tailFile(path, n)
	if err != nil {
		return nil, err
	}
	have := countLines(cur)
	if n > 0 && have >= n {
		return cur, nil
	}
	rest := 0
	if n > 0 {
		rest = n - have
	}
	prev, err := tailFile(path+".1", rest)
	if err != nil || len(prev) == 0 {
		return cur, err
	}
	if !bytes.HasSuffix(prev, []byte("\n")) {
		prev = append(prev, '\n')
	}
	return append(prev, cur...), nil
}

// tailFile returns the last n lines of a file (all of it if n <= 0),
// reading from its end.
func tailFile(path string, n int) ([]byte, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if n <= 0 {
		return io.ReadAll(f)
	}
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	const chunk = 64 << 10
	var buf []byte
	off := fi.Size()
	for off > 0 && bytes.Count(buf, []byte("\n")) <= n {
		size := min(int64(chunk), off)
		off -= size
		b := make([]byte, size)
		if _, err := f.ReadAt(b, off); err != nil && err != io.EOF {
			return nil, err
		}
		buf = append(b, buf...)
	}
	return lastLines(buf, n), nil
}

func lastLines(b []byte, n int) []byte {
	end := len(b)
	if end > 0 && b[end-1] == '\n' {
		end--
	}
	for i := 0; i < n; i++ {
		j := bytes.LastIndexByte(b[:end], '\n')
		if j < 0 {
			return b
		}
		end = j
	}
	return b[end+1:]
}

func countLines(b []byte) int {
	n := bytes.Count(b, []byte("\n"))
	if len(b) > 0 && b[len(b)-1] != '\n' {
		n++
	}
	return n
}

// Stats samples the replica's main process: CPU from /proc/PID/stat over
// 200 ms, in percent of one core (of the CPU limit, when resources sets
// one), and its resident memory, in percent of the memory limit (of the
// host's memory, when there is none). Threads and Connections count the
// replica's whole process tree, the supervisor's child and its
// descendants (not the supervisor): the threads from /proc/PID/status,
// and the TCP connections in state ESTABLISHED among the sockets they
// hold open (see hostfs.EstablishedTCP). Connections stay unknown when
// the processes' open files cannot be read (they run as another user and
// tend is not root).
func (p *Provider) Stats(ctx context.Context, inst providers.Instance) (providers.Stats, error) {
	var out providers.Stats
	dir, err := p.instDirOf(inst)
	if err != nil {
		return out, err
	}
	f := readInstance(dir)
	pid := f.st.ChildPID
	if pid == 0 || !isChild(pid, f.supPid, dir, f.argv, f.st.ChildStartedAt) {
		return out, fmt.Errorf("stats of %s replica %d: no process is running", inst.Server, inst.Replica)
	}
	var rec record
	_ = hostfs.ReadJSON(filepath.Join(dir, identityFile), &rec)
	a, err := readStat(pid)
	if err != nil {
		return out, err
	}
	// The tree is counted while the CPU sample runs (a scan of /proc
	// takes some milliseconds).
	counted := make(chan hostfs.TreeCounts, 1)
	go func() { counted <- hostfs.CountTree(pid) }()
	t0 := time.Now()
	select {
	case <-ctx.Done():
		return out, ctx.Err()
	case <-time.After(200 * time.Millisecond):
	}
	b, err := readStat(pid)
	if err != nil {
		return out, fmt.Errorf("stats of %s replica %d: the process exited", inst.Server, inst.Replica)
	}
	elapsed := time.Since(t0).Seconds()
	ticks := float64((b.UTime + b.STime) - (a.UTime + a.STime))
	out.CPUPercent = ticks / clockTicks / elapsed * 100
	if rec.Resources != nil && rec.Resources.MilliCPU > 0 {
		out.CPUPercent = out.CPUPercent * 1000 / float64(rec.Resources.MilliCPU)
	}
	rss, err := hostfs.RSSBytes(pid)
	if err != nil {
		return out, err
	}
	out.MemoryBytes = rss
	limit := hostfs.MemTotal()
	if rec.Resources != nil && rec.Resources.MemoryBytes > 0 {
		limit = rec.Resources.MemoryBytes
	}
	if limit > 0 {
		out.MemoryPercent = float64(rss) / float64(limit) * 100
	}
	c := <-counted
	out.Threads, out.HasThreads = c.Threads, c.HasThreads
	out.Connections, out.HasConnections = c.Connections, c.HasConnections
	return out, nil
}
