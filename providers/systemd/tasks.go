package systemd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	sdbus "github.com/coreos/go-systemd/v22/dbus"
	"github.com/godbus/dbus/v5"

	"github.com/tendhq/tend/providers"
	"github.com/tendhq/tend/providers/internal/hostfs"
)

// task is a one-off command as a transient unit.
type task struct {
	managedBy, server string
	argv              []string
	plainEnv          map[string]string
	envFiles          []string // environment files systemd reads (secrets)
	workDir           string
	user              string
	dir               string // the task's own directory: output, env file
	red               providers.Redactor
}

// envFileProp is one item of the EnvironmentFiles property: a path, and
// whether a missing file is fine.
type envFileProp struct {
	Path     string
	Optional bool
}

// Exec runs a one-off task as a transient service unit: req.Command,
// expanded with the replica's environment, with that environment (its
// secrets through an environment file), working directory and user. With
// an instance, it runs beside that replica; without one, in a fresh
// working directory holding the server's config files (replica 0's
// environment and volumes), for hooks and migrations. It waits for the
// task to end and copies its output to req.Stdout and req.Stderr.
func (p *Provider) Exec(ctx context.Context, req providers.ExecRequest) providers.ExecResponse {
	code, err := p.exec(ctx, req)
	return providers.ExecResponse{ExitCode: code, Err: err}
}

func (p *Provider) exec(ctx context.Context, req providers.ExecRequest) (int, error) {
	if len(req.Command) == 0 {
		return -1, errors.New("exec: no command")
	}
	stdout, stderr := req.Stdout, req.Stderr
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil {
		stderr = io.Discard
	}
	t := &task{}
	hasSpec := req.Desired != nil && req.Desired.Server != nil
	var (
		l   *launch
		rec *record
		art string
	)
	switch {
	case hasSpec:
		t.managedBy, t.server = p.managedByOf(req.Desired.ManagedBy), req.Desired.Server.Name
	case req.Instance != nil:
		t.managedBy, t.server = p.managedByOf(req.Instance.ManagedBy), req.Instance.Server
	default:
		return -1, errors.New("exec: neither a server spec nor a replica to run the task for")
	}
	if req.Instance != nil {
		var r record
		dir := p.instanceDir(t.managedBy, req.Instance.Server, req.Instance.Replica)
		if err := hostfs.ReadJSON(filepath.Join(dir, recordFile), &r); err == nil {
			rec = &r
		}
	}
	if hasSpec {
		replica := 0
		if req.Instance != nil {
			replica = req.Instance.Replica
		}
		var err error
		if l, err = p.prepare(req.Desired, t.managedBy, replica); err != nil {
			return -1, fmt.Errorf("exec: %w", err)
		}
		t.red = l.red
		if art, err = p.ensureArtifact(ctx, req.Desired.Server); err != nil {
			return -1, t.red.Error(fmt.Errorf("exec: %w", err))
		}
		t.plainEnv, t.user = l.plainEnv, l.userName
	} else if rec != nil {
		t.plainEnv, t.user, art = rec.PlainEnv, rec.User, rec.Artifact
		if rec.EnvFile != "" {
			t.envFiles = append(t.envFiles, rec.EnvFile)
			if b, err := os.ReadFile(rec.EnvFile); err == nil {
				t.red.Add(envFileValues(b)...)
			}
		}
	} else {
		return -1, fmt.Errorf("exec: %s replica %d: no such instance, and no server spec was given", req.Instance.Server, req.Instance.Replica)
	}
	if rec != nil {
		if fi, err := os.Stat(rec.WorkDir); err == nil && fi.IsDir() {
			t.workDir = rec.WorkDir
		}
	}
	conn, err := p.bus(ctx)
	if err != nil {
		return -1, err
	}

	tasks := filepath.Join(p.root, ".tasks")
	if err := os.MkdirAll(tasks, 0o711); err != nil {
		return -1, fmt.Errorf("exec: %w", err)
	}
	if t.dir, err = os.MkdirTemp(tasks, encodeName(t.server)+"-"); err != nil {
		return -1, fmt.Errorf("exec: %w", err)
	}
	defer os.RemoveAll(t.dir)
	if err := os.Chmod(t.dir, 0o711); err != nil {
		return -1, fmt.Errorf("exec: %w", err)
	}

	if l != nil {
		if t.workDir == "" {
			// A fresh working directory with the server's config files.
			if err := l.rebase(filepath.Join(t.dir, workDirName)); err != nil {
				return -1, fmt.Errorf("exec: %w", err)
			}
			t.workDir = l.workDir
			if err := os.MkdirAll(t.workDir, 0o755); err != nil {
				return -1, fmt.Errorf("exec: %w", err)
			}
			if err := chownTree(filepath.Join(t.dir, workDirName), l.user); err != nil {
				return -1, fmt.Errorf("exec: %w", err)
			}
			for _, cf := range l.configs {
				if err := os.MkdirAll(filepath.Dir(cf.path), 0o755); err != nil {
					return -1, fmt.Errorf("exec: config file %s: %w", cf.path, err)
				}
				if err := hostfs.WriteFileAtomic(cf.path, cf.content, cf.mode); err != nil {
					return -1, fmt.Errorf("exec: config file %s: %w", cf.path, err)
				}
				if l.user != nil {
					_ = os.Chown(cf.path, l.user.uid, l.user.gid)
				}
			}
		}
		for _, v := range l.volumes {
			if err := os.MkdirAll(v.HostDir, 0o700); err != nil {
				return -1, fmt.Errorf("exec: volume %s: %w", v.Name, err)
			}
			if l.user != nil {
				_ = os.Chown(v.HostDir, l.user.uid, l.user.gid)
			}
		}
	}
	if t.workDir == "" {
		return -1, fmt.Errorf("exec: the working directory of %s replica %d is gone", req.Instance.Server, req.Instance.Replica)
	}

	// The command: $(NAME) expanded from the environment, the program
	// resolved like a replica's; items holding a secret travel through
	// the task's environment file, as ${TEND_ARG_<i>}.
	vars := map[string]string{}
	for k, v := range t.plainEnv {
		vars[k] = v
	}
	secretEnv := map[string]string{}
	if l != nil {
		for k, v := range l.secretEnv {
			vars[k] = v
			secretEnv[k] = v
		}
	}
	argv := make([]string, len(req.Command))
	for i, a := range req.Command {
		argv[i] = providers.Expand(a, vars)
	}
	path := t.plainEnv["PATH"]
	if path == "" {
		path = defaultPath
	}
	// The command arrives revealed, so errors name no part of it.
	prog, err := resolveProgram(argv[0], art, path)
	if err != nil {
		if art == "" && !filepath.IsAbs(argv[0]) && strings.Contains(argv[0], "/") {
			if abs := filepath.Join(t.workDir, argv[0]); isExecutable(abs) {
				prog, err = abs, nil
			}
		}
		if err != nil {
			return -1, errors.New("exec: the task's program cannot be found or run")
		}
	}
	argv[0] = prog
	t.argv = make([]string, len(argv))
	for i, a := range argv {
		if i > 0 && t.red.String(a) != a {
			name := "TEND_ARG_" + strconv.Itoa(i)
			secretEnv[name] = a
			t.argv[i] = "${" + name + "}"
			continue
		}
		t.argv[i] = strings.ReplaceAll(a, "$", "$$")
	}
	if len(secretEnv) > 0 {
		b, err := renderEnvFile("a task of server "+t.server, secretEnv)
		if err != nil {
			return -1, t.red.Error(fmt.Errorf("exec: %w", err))
		}
		envPath := filepath.Join(t.dir, envFile)
		if err := hostfs.WriteFileAtomic(envPath, b, 0o600); err != nil {
			return -1, fmt.Errorf("exec: %w", err)
		}
		t.envFiles = append(t.envFiles, envPath)
	}
	code, err := p.runTask(ctx, conn, t, stdout, stderr)
	return code, t.red.Error(err)
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// rebase moves the launch's default working directory (and the config
// files relative to it) to dir.
func (l *launch) rebase(dir string) error {
	old := filepath.Join(l.instDir, workDirName)
	move := func(p string) string {
		if p == old {
			return dir
		}
		if rest, ok := strings.CutPrefix(p, old+string(filepath.Separator)); ok {
			return filepath.Join(dir, rest)
		}
		return p
	}
	l.workDir = move(l.workDir)
	for i := range l.configs {
		l.configs[i].path = move(l.configs[i].path)
	}
	return nil
}

// envFileValues returns the values of an environment file tend wrote, to
// hide them in messages.
func envFileValues(b []byte) []string {
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if _, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			v = strings.TrimSuffix(strings.TrimPrefix(v, `"`), `"`)
			if v != "" {
				out = append(out, v)
			}
		}
	}
	return out
}

// runTask starts the task as a transient unit, waits for it to end, and
// copies its output.
func (p *Provider) runTask(ctx context.Context, conn *sdbus.Conn, t *task, stdout, stderr io.Writer) (int, error) {
	name := taskUnitName(t.managedBy, t.server)
	outPath, errPath := filepath.Join(t.dir, "stdout"), filepath.Join(t.dir, "stderr")
	env := make([]string, 0, len(t.plainEnv))
	for _, k := range sortedKeys(t.plainEnv) {
		env = append(env, k+"="+t.plainEnv[k])
	}
	files := make([]envFileProp, 0, len(t.envFiles))
	for _, f := range t.envFiles {
		files = append(files, envFileProp{Path: f})
	}
	props := []sdbus.Property{
		sdbus.PropDescription(fmt.Sprintf("tend task for %s (managed-by %s)", t.server, t.managedBy)),
		sdbus.PropType("exec"),
		sdbus.PropRemainAfterExit(true),
		sdbus.PropExecStart(t.argv, true),
		{Name: "Environment", Value: dbus.MakeVariant(env)},
		{Name: "EnvironmentFiles", Value: dbus.MakeVariant(files)},
		{Name: "WorkingDirectory", Value: dbus.MakeVariant(t.workDir)},
		{Name: "StandardOutputFile", Value: dbus.MakeVariant(outPath)},
		{Name: "StandardErrorFile", Value: dbus.MakeVariant(errPath)},
		{Name: "CPUAccounting", Value: dbus.MakeVariant(true)},
		{Name: "MemoryAccounting", Value: dbus.MakeVariant(true)},
	}
	if t.user != "" {
		props = append(props, sdbus.Property{Name: "User", Value: dbus.MakeVariant(t.user)})
	}
	ch := make(chan string, 1)
	if _, err := conn.StartTransientUnitContext(ctx, name, "fail", props, ch); err != nil {
		return -1, p.busErr("exec: start the task unit", err)
	}
	defer func() {
		// A fresh context: the caller's may be what ended.
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = p.stopUnit(cctx, conn, name, time.Second)
		_ = conn.ResetFailedUnitContext(cctx, name)
	}()
	select {
	case <-ch:
	case <-ctx.Done():
		return -1, fmt.Errorf("exec: the task was killed: %w", ctx.Err())
	}
	ended := func(u unitProps) bool {
		return u.Active == "failed" || u.Active == "inactive" || (u.Active == "active" && u.Sub == "exited")
	}
	var u unitProps
	for {
		var err error
		if u, err = p.props(ctx, conn, name); err != nil && ctx.Err() == nil {
			return -1, err
		}
		if ctx.Err() != nil {
			_ = conn.KillUnitWithTarget(context.Background(), name, sdbus.All, int32(syscall.SIGKILL))
			copyOut(outPath, stdout)
			copyOut(errPath, stderr)
			return -1, fmt.Errorf("exec: the task was killed: %w", ctx.Err())
		}
		if ended(u) {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(pollEvery):
		}
	}
	copyOut(outPath, stdout)
	copyOut(errPath, stderr)
	if u.ExecMainCode == 1 {
		switch u.ExecMainStatus {
		case 200, 203, 217:
			if u.Result == "exit-code" {
				return int(u.ExecMainStatus), fmt.Errorf("exec: cannot start the task's program: %s", systemdExits[u.ExecMainStatus])
			}
		}
	}
	if u.ExecMainCode == 0 && u.Active == "failed" {
		return -1, fmt.Errorf("exec: the task unit failed before its program ran (%s)", u.Result)
	}
	return exitCode(u.ExecMainCode, u.ExecMainStatus), nil
}

func copyOut(path string, w io.Writer) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	_, _ = io.Copy(w, f)
}

// Stats samples the unit's cgroup accounting: CPUUsageNSec over 200 ms, in
// percent of one core (of the CPU limit, when resources sets one), and
// MemoryCurrent, in percent of the memory limit (of the host's memory,
// when there is none). Where the accounting is not available, the main
// process's /proc figures stand in. Threads is the unit's TasksCurrent
// (the tasks of its cgroup: every thread of every process in it), else
// the threads of the main process and its descendants. Connections are
// the TCP connections in state ESTABLISHED held by the main process and
// its descendants (see hostfs.EstablishedTCP); they stay unknown when
// tend cannot read those processes' open files (it is not root and they
// run as another user).
func (p *Provider) Stats(ctx context.Context, inst providers.Instance) (providers.Stats, error) {
	var out providers.Stats
	managedBy := p.managedByOf(inst.ManagedBy)
	unit, err := unitName(managedBy, inst.Server, inst.Replica)
	if err != nil {
		return out, err
	}
	conn, err := p.bus(ctx)
	if err != nil {
		return out, err
	}
	fail := func(err error) (providers.Stats, error) {
		return out, fmt.Errorf("stats of %s replica %d: %w", inst.Server, inst.Replica, err)
	}
	a, err := p.props(ctx, conn, unit)
	if err != nil {
		return fail(err)
	}
	if a.Active != "active" || a.MainPID == 0 {
		return fail(fmt.Errorf("the unit is %s (%s), not running", a.Active, a.Sub))
	}
	cpuA := procCPU(a.MainPID)
	// The process tree is counted while the CPU sample runs (a scan of
	// /proc takes some milliseconds).
	counted := make(chan hostfs.TreeCounts, 1)
	go func() { counted <- hostfs.CountTree(int(a.MainPID)) }()
	t0 := time.Now()
	select {
	case <-ctx.Done():
		return out, ctx.Err()
	case <-time.After(200 * time.Millisecond):
	}
	b, err := p.props(ctx, conn, unit)
	if err != nil {
		return fail(err)
	}
	elapsed := time.Since(t0)
	switch {
	case a.CPUUsageNSec != unset && b.CPUUsageNSec != unset && b.CPUUsageNSec >= a.CPUUsageNSec:
		out.CPUPercent = float64(b.CPUUsageNSec-a.CPUUsageNSec) / float64(elapsed.Nanoseconds()) * 100
	case b.MainPID == a.MainPID:
		if cpuB := procCPU(b.MainPID); cpuB >= cpuA && cpuA >= 0 {
			out.CPUPercent = float64(cpuB-cpuA) / float64(elapsed.Nanoseconds()) * 100
		}
	}
	var rec record
	_ = hostfs.ReadJSON(filepath.Join(p.instanceDir(managedBy, inst.Server, inst.Replica), recordFile), &rec)
	if r := rec.Resources; r != nil && r.MilliCPU > 0 {
		out.CPUPercent = out.CPUPercent * 1000 / float64(r.MilliCPU)
	}
	switch {
	case b.MemoryCurrent != unset:
		out.MemoryBytes = int64(b.MemoryCurrent)
	default:
		rss, err := hostfs.RSSBytes(int(b.MainPID))
		if err != nil {
			return fail(errors.New("systemd has no memory accounting for the unit, and its main process is gone"))
		}
		out.MemoryBytes = rss
	}
	limit := hostfs.MemTotal()
	if r := rec.Resources; r != nil && r.MemoryBytes > 0 {
		limit = r.MemoryBytes
	} else if b.MemoryMax != unset && b.MemoryMax > 0 {
		limit = int64(b.MemoryMax)
	}
	if limit > 0 {
		out.MemoryPercent = float64(out.MemoryBytes) / float64(limit) * 100
	}
	c := <-counted
	out.Threads, out.HasThreads = c.Threads, c.HasThreads
	out.Connections, out.HasConnections = c.Connections, c.HasConnections
	if prop, err := conn.GetServicePropertyContext(ctx, unit, "TasksCurrent"); err == nil {
		if n := num(prop.Value.Value()); n != unset && n > 0 {
			out.Threads, out.HasThreads = int(n), true
		}
	}
	return out, nil
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat times.
const clockTicks = 100

// procCPU is the CPU time of a process in nanoseconds, or -1.
func procCPU(pid uint32) int64 {
	b, err := os.ReadFile("/proc/" + strconv.FormatUint(uint64(pid), 10) + "/stat")
	if err != nil {
		return -1
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return -1
	}
	f := strings.Fields(string(b[i+2:]))
	if len(f) < 13 {
		return -1
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64) // field 14
	st, err2 := strconv.ParseInt(f[12], 10, 64) // field 15
	if err1 != nil || err2 != nil {
		return -1
	}
	return (ut + st) * int64(time.Second) / clockTicks
}

// Logs returns the last lines lines (all, if lines <= 0) of the unit's
// journal, as journalctl -u UNIT -o cat shows them.
func (p *Provider) Logs(ctx context.Context, inst providers.Instance, lines int) ([]byte, error) {
	unit, err := unitName(p.managedByOf(inst.ManagedBy), inst.Server, inst.Replica)
	if err != nil {
		return nil, err
	}
	args := []string{"-u", unit, "--no-pager", "-o", "cat"}
	if p.userMode {
		args = []string{"--user-unit", unit, "--no-pager", "-o", "cat"}
	}
	if lines > 0 {
		args = append(args, "-n", strconv.Itoa(lines))
	} else {
		args = append(args, "-n", "all")
	}
	return p.journal(ctx, inst, args)
}

var _ providers.LogStreamer = (*Provider)(nil)

// StreamLogs implements providers.LogStreamer through journalctl: the last
// req.Tail lines, since req.Since (-S), and with req.Follow (-f) what the
// unit writes next, until ctx ends.
func (p *Provider) StreamLogs(ctx context.Context, req providers.LogRequest) error {
	inst := req.Instance
	unit, err := unitName(p.managedByOf(inst.ManagedBy), inst.Server, inst.Replica)
	if err != nil {
		return err
	}
	args := []string{"-u", unit, "--no-pager", "-o", "cat", "-n", "all"}
	if p.userMode {
		args[0] = "--user-unit"
	}
	if req.Tail > 0 {
		args[len(args)-1] = strconv.Itoa(req.Tail)
	}
	if !req.Since.IsZero() {
		args = append(args, "-S", "@"+strconv.FormatInt(req.Since.Unix(), 10))
	}
	if !req.Follow {
		out, err := p.journal(ctx, inst, args)
		if err != nil {
			return err
		}
		_, err = req.Out.Write(out)
		return err
	}
	cmd := exec.CommandContext(ctx, "journalctl", append(args, "-f")...)
	var errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = req.Out, &errOut
	if err := cmd.Run(); err != nil && ctx.Err() == nil {
		msg := strings.TrimSpace(errOut.String())
		if msg == "" {
			msg = err.Error()
		}
		return fmt.Errorf("logs of %s replica %d: journalctl: %s", inst.Server, inst.Replica, msg)
	}
	return nil
}

// journal runs journalctl with args and returns its output.
func (p *Provider) journal(ctx context.Context, inst providers.Instance, args []string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "journalctl", args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(errOut.String())
		if msg == "" {
			msg = err.Error()
		}
		return nil, fmt.Errorf("logs of %s replica %d: journalctl: %s", inst.Server, inst.Replica, msg)
	}
	return out.Bytes(), nil
}
