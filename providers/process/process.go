package process

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/tendhq/tend/providers"
	"github.com/tendhq/tend/providers/internal/hostfs"
	"github.com/tendhq/tend/providers/internal/keylock"
	"github.com/tendhq/tend/providers/process/supervisor"
	"github.com/tendhq/tend/spec"
)

// Type is the provider type.
const Type = "process"

const (
	defaultStopTimeout = supervisor.DefaultStopTimeout
	defaultHost        = "127.0.0.1"
	// startWait is how long StartReplica waits for the child to be up (or
	// to have failed) before it returns a replica that is still starting.
	startWait = 2 * time.Second
	// stopSlack is how much longer than the grace StopReplica waits for
	// the supervisor, which itself waits the grace for the child.
	stopSlack = 3 * time.Second
	// killWait is how long StopReplica waits for killed processes to go.
	killWait  = 3 * time.Second
	pollEvery = 50 * time.Millisecond
	// pipeWaitDelay is how long a task's output pipes may outlive it.
	pipeWaitDelay = 2 * time.Second
)

// inheritedEnv are the variables of tend's own environment that a replica
// gets (unless its env sets them). Nothing else of tend's environment is
// passed on: it holds TEND_SECRET_* and the like.
var inheritedEnv = []string{"PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LC_ALL", "TZ", "TMPDIR"}

// Provider runs replicas as local processes, each under a supervisor.
type Provider struct {
	name          string
	key           string // process.NAME
	root          string
	host          string
	stopTimeout   time.Duration
	managedBy     string
	exe           string // this executable
	supervisorExe string // the program supervisors run: tend-supervise, or exe
	stateDir      string // tend's state directory, absolute, for messages

	locks keylock.Map // per instance directory

	// seen holds the state directory and the root as this provider first
	// found them, to notice them removed while tend runs.
	seenMu sync.Mutex
	seen   map[string]os.FileInfo

	// scan says, per managed-by identity, when Observe must look through
	// /proc for replicas whose directory is gone (see needLostScan).
	scanMu sync.Mutex
	scan   map[string]lostScan
}

// lostScan is what Observe last knew of a managed-by identity's directory.
type lostScan struct {
	dir  os.FileInfo // nil: it did not exist
	lost bool        // the last scan found lost replicas
}

var (
	_ providers.Provider   = (*Provider)(nil)
	_ providers.Execer     = (*Provider)(nil)
	_ providers.Logger     = (*Provider)(nil)
	_ providers.Statser    = (*Provider)(nil)
	_ providers.DataCopier = (*Provider)(nil)
	_ providers.Halter     = (*Provider)(nil)
)

// Register adds the process provider type to r.
func Register(r *providers.Registry) {
	r.Register(Type, func(p *spec.Provider, env providers.Env) (providers.Provider, error) {
		pr, err := New(p, env)
		if err != nil {
			return nil, err
		}
		return pr, nil
	})
}

// New builds a process provider from its provider block. Its files live in
// the block's work_dir, or else in env.StateDir/providers/process.NAME.
func New(p *spec.Provider, env providers.Env) (*Provider, error) {
	if p == nil {
		return nil, errors.New("no provider block")
	}
	if p.Type != "" && p.Type != Type {
		return nil, fmt.Errorf("provider %s is not a process provider", p.Key())
	}
	if err := checkComponent("provider name", p.Name); err != nil {
		return nil, err
	}
	var set spec.ProcessSettings
	if p.Process != nil {
		set = *p.Process
	}
	root := set.WorkDir
	if root == "" {
		if env.StateDir == "" {
			return nil, errors.New("the process provider needs a work_dir or tend's state directory, and has neither")
		}
		root = filepath.Join(env.StateDir, "providers", Type+"."+p.Name)
	}
	root, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("cannot find tend's own executable, which supervises replicas: %w", err)
	}
	pr := &Provider{
		name: p.Name, key: Type + "." + p.Name, root: root,
		host: set.Host, stopTimeout: set.StopTimeout,
		managedBy: env.ManagedBy, exe: exe, supervisorExe: supervisorProgram(exe),
	}
	if env.StateDir != "" {
		if pr.stateDir, err = filepath.Abs(env.StateDir); err != nil {
			return nil, err
		}
	}
	pr.checkRoot()
	if pr.host == "" {
		pr.host = defaultHost
	}
	if pr.stopTimeout <= 0 {
		pr.stopTimeout = defaultStopTimeout
	}
	if pr.managedBy == "" {
		pr.managedBy = providers.DefaultManagedBy
	}
	return pr, nil
}

// Type returns "process".
func (p *Provider) Type() string { return Type }

// Root is the directory the provider keeps its instances in.
func (p *Provider) Root() string { return p.root }

func (p *Provider) managedByOf(m string) string {
	if m != "" {
		return m
	}
	return p.managedBy
}

// checkComponent refuses a name that cannot be one path component.
func checkComponent(what, s string) error {
	if s == "" || s == "." || s == ".." || strings.ContainsAny(s, "/\x00") {
		return fmt.Errorf("%s %q cannot name a directory", what, s)
	}
	return nil
}

// instanceDir is ROOT/MANAGEDBY/SERVER/REPLICA.
func (p *Provider) instanceDir(managedBy, server string, replica int) (string, error) {
	if err := checkComponent("managed-by identity", managedBy); err != nil {
		return "", err
	}
	if err := checkComponent("server name", server); err != nil {
		return "", err
	}
	if replica < 0 {
		return "", fmt.Errorf("replica %d: a replica index is 0 or more", replica)
	}
	return filepath.Join(p.root, managedBy, server, strconv.Itoa(replica)), nil
}

func (p *Provider) instDirOf(inst providers.Instance) (string, error) {
	return p.instanceDir(p.managedByOf(inst.ManagedBy), inst.Server, inst.Replica)
}

func (p *Provider) lock(dir string) func() { return p.locks.Lock(dir) }

// launch is what StartReplica and Exec work out from a spec before they
// touch anything.
type launch struct {
	env           map[string]spec.Value
	argv          []string // argv[0] resolved to an absolute path
	sensitiveArgs []int
	volumes       []volumeRecord
	configs       []configOut
	workSub       string // the server's work_dir, relative to the work dir
	red           redactor
}

type configOut struct {
	rel     string
	content []byte
	mode    os.FileMode
}

// prepare works out a replica's environment, volumes and config files.
func (p *Provider) prepare(d *providers.Desired, managedBy string, replica int) (*launch, error) {
	s := d.Server
	l := &launch{}
	if s.Artifact != nil {
		return nil, errors.New("the process provider does not download artifacts: give the command an installed program")
	}
	if err := checkUser(s.User); err != nil {
		return nil, err
	}
	if s.WorkDir != "" {
		w := s.WorkDir
		if filepath.IsAbs(w) {
			return nil, fmt.Errorf("work_dir %q: the process provider runs each replica in a directory of its own and writes its config files there, so work_dir must be a relative path inside it", w)
		}
		if !cleanRelative(w) {
			return nil, fmt.Errorf("work_dir %q: not a clean relative path", w)
		}
		l.workSub = w
	}
	extra := map[string]string{}
	for _, v := range s.Volumes {
		if err := checkComponent("volume name", v.Name); err != nil {
			return nil, err
		}
		host := v.Source
		if host == "" {
			host = filepath.Join(p.root, managedBy, s.Name, volumesDirName, v.Name+"-"+strconv.Itoa(replica))
		} else {
			var err error
			if host, err = filepath.Abs(host); err != nil {
				return nil, err
			}
		}
		l.volumes = append(l.volumes, volumeRecord{Name: v.Name, Path: v.Path, HostDir: host})
		extra["TEND_VOLUME_"+envKey(v.Name)] = host
	}
	l.env = providers.ReplicaEnv(d, replica, extra)
	for _, k := range inheritedEnv {
		if _, set := l.env[k]; !set {
			if v, ok := os.LookupEnv(k); ok {
				l.env[k] = spec.Plain(v)
			}
		}
	}
	for _, v := range l.env {
		if v.IsSensitive() {
			l.red.Add(v.Reveal())
		}
	}
	for _, cf := range s.ConfigFiles {
		if filepath.IsAbs(cf.Path) {
			return nil, fmt.Errorf("config file %s: the process provider writes config files into the replica's working directory, so the path must be relative", cf.Path)
		}
		if !cleanRelative(cf.Path) {
			return nil, fmt.Errorf("config file %s: not a clean relative path", cf.Path)
		}
		mode := os.FileMode(cf.Mode) & 0o777
		if mode == 0 {
			mode = 0o644
		}
		if cf.Content.IsSensitive() {
			mode &^= 0o077
		}
		l.configs = append(l.configs, configOut{rel: cf.Path, content: []byte(cf.Content.Reveal()), mode: mode})
	}
	return l, nil
}

// command works out the replica's argv: command and args expanded with its
// environment, the program resolved to an absolute path.
func (l *launch) command(s *spec.Server) error {
	argv := providers.ExpandArgv(s, l.env)
	if len(argv) == 0 {
		return errors.New("the server has no command")
	}
	var secretNames []string
	for k, v := range l.env {
		if v.IsSensitive() {
			secretNames = append(secretNames, k)
		}
	}
	for i, item := range slices.Concat(s.Command, s.Args) {
		if item.IsSensitive() || refersTo(item.Reveal(), secretNames) {
			l.sensitiveArgs = append(l.sensitiveArgs, i)
			l.red.Add(argv[i])
		}
	}
	prog, err := resolveProgram(argv[0], l.env["PATH"].Reveal())
	if err != nil {
		return l.red.Error(err)
	}
	if s.BuildDigest != "" {
		if err := providers.CheckBuild(prog, s.BuildDigest); err != nil {
			return err
		}
	}
	argv[0] = prog
	l.argv = argv
	return nil
}

// refersTo reports whether s uses $(NAME) for one of names.
func refersTo(s string, names []string) bool {
	for _, n := range names {
		if strings.Contains(s, "$("+n+")") {
			return true
		}
	}
	return false
}

// resolveProgram makes argv[0] absolute: a path with a slash is taken
// relative to tend's current directory, a bare name is looked up in PATH
// (the replica's PATH).
func resolveProgram(prog, path string) (string, error) {
	if prog == "" {
		return "", errors.New("the command's program is empty")
	}
	if strings.Contains(prog, "/") {
		return filepath.Abs(prog)
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		cand := filepath.Join(dir, prog)
		if fi, err := os.Stat(cand); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return filepath.Abs(cand)
		}
	}
	return "", fmt.Errorf("program %q is not in PATH", prog)
}

func cleanRelative(p string) bool {
	return p != "" && !filepath.IsAbs(p) && filepath.Clean(p) == p && p != "." && p != ".." && !strings.HasPrefix(p, "../")
}

func envKey(name string) string {
	return strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

func checkUser(u string) error {
	if u == "" {
		return nil
	}
	cur, err := user.Current()
	if err != nil {
		return fmt.Errorf("user %q: cannot tell which user tend runs as: %v", u, err)
	}
	if u == cur.Username || u == cur.Uid {
		return nil
	}
	return fmt.Errorf("user %q: the process provider runs replicas as the user tend runs as (%s) and cannot switch users", u, cur.Username)
}

func revealEnv(env map[string]spec.Value) map[string]string {
	out := make(map[string]string, len(env))
	for k, v := range env {
		out[k] = v.Reveal()
	}
	return out
}

// writeConfigs writes config files under workDir.
func writeConfigs(workDir string, cfs []configOut) ([]fileDigest, error) {
	var out []fileDigest
	for _, cf := range cfs {
		path := filepath.Join(workDir, cf.rel)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(path, cf.content, cf.mode); err != nil {
			return nil, fmt.Errorf("config file %s: %w", cf.rel, err)
		}
		if err := os.Chmod(path, cf.mode); err != nil { // the umask may have cut it
			return nil, err
		}
		out = append(out, fileDigest{Path: cf.rel, SHA256: hostfs.SHA256Hex(cf.content), Mode: octalMode(cf.mode)})
	}
	return out, nil
}

// StartReplica creates replica req.Replica, or replaces the existing one in
// place (same ports): the old one is stopped first.
func (p *Provider) StartReplica(ctx context.Context, req providers.StartRequest) providers.StartResponse {
	inst, err := p.startReplica(ctx, req)
	return providers.StartResponse{Instance: inst, Err: err}
}

func (p *Provider) startReplica(ctx context.Context, req providers.StartRequest) (providers.Instance, error) {
	d := req.Desired
	if d == nil || d.Server == nil {
		return providers.Instance{}, errors.New("no server to start")
	}
	s := d.Server
	managedBy := p.managedByOf(d.ManagedBy)
	dir, err := p.instanceDir(managedBy, s.Name, req.Replica)
	if err != nil {
		return providers.Instance{}, err
	}
	id := d.Identity(req.Replica)
	id.ManagedBy = managedBy
	fail := func(err error) (providers.Instance, error) {
		return providers.Instance{}, fmt.Errorf("start %s replica %d: %w", s.Name, req.Replica, err)
	}

	// Everything that can be refused is refused before the running
	// replica is touched.
	l, err := p.prepare(d, managedBy, req.Replica)
	if err != nil {
		return fail(err)
	}
	if err := l.command(s); err != nil {
		return fail(err)
	}

	// A replica whose directory is gone may still run, on the ports a new
	// one would take. /proc is looked through as Observe does (see
	// needLostScan): on the first start, and when the directories changed,
	// not on every start of a fleet's replicas.
	if err := p.checkRoot(); err != nil {
		return fail(err)
	}
	if lost := p.lostSinceScan(managedBy, s.Name); slices.ContainsFunc(lost, func(l lostReplica) bool { return l.dir == dir }) {
		return fail(p.lostError(lost))
	}

	unlock := p.lock(dir)
	defer unlock()
	if _, err := os.Lstat(dir); err == nil {
		if err := p.stop(ctx, dir, 0); err != nil {
			return fail(fmt.Errorf("stop the running replica: %w", err))
		}
	}
	if err := ctx.Err(); err != nil {
		return fail(err)
	}

	inst, err := p.create(ctx, dir, id, s, l)
	if err != nil {
		if rerr := p.checkRoot(); rerr != nil && !errors.Is(err, ErrLost) {
			err = rerr // the cause: the files vanished under create
		}
		return fail(l.red.Error(err))
	}
	_ = p.checkRoot() // the first replica made the root
	return inst, nil
}

// checkRoot remembers the state directory and the root when it first
// finds them and refuses to go on once one was removed (or replaced)
// since: the replicas this tend started keep running, and new ones would
// be started beside them.
func (p *Provider) checkRoot() error {
	p.seenMu.Lock()
	defer p.seenMu.Unlock()
	if p.seen == nil {
		p.seen = map[string]os.FileInfo{}
	}
	dirs := []string{p.root}
	if p.stateDir != "" && within(p.root, p.stateDir) {
		dirs = []string{p.stateDir, p.root} // outermost first
	}
	for _, d := range dirs {
		fi, err := os.Stat(d)
		was, ok := p.seen[d]
		switch {
		case !ok:
			if err == nil {
				p.seen[d] = fi
			}
			continue
		case err == nil && os.SameFile(fi, was):
			continue
		}
		what := "the provider's directory " + d
		if d == p.stateDir {
			what = "the state directory " + d
		}
		return fmt.Errorf("%w: %s was removed while tend ran, and with it what tend knew of the replicas it runs (they keep running). "+
			"Put %s back from a backup, or run tend again: it finds the replicas that still run and says how to stop them",
			ErrLost, what, d)
	}
	return nil
}

func (p *Provider) create(ctx context.Context, dir string, id providers.Identity, s *spec.Server, l *launch) (inst providers.Instance, err error) {
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		return inst, err
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		return inst, err
	}
	started := false
	defer func() {
		if err != nil && !started {
			os.RemoveAll(dir)
		}
	}()
	workDir := filepath.Join(dir, workDirName)
	if l.workSub != "" {
		workDir = filepath.Join(workDir, l.workSub)
	}
	if err := os.MkdirAll(workDir, 0o755); err != nil {
		return inst, err
	}
	digests, err := writeConfigs(workDir, l.configs)
	if err != nil {
		return inst, err
	}
	for _, v := range l.volumes {
		if err := os.MkdirAll(v.HostDir, 0o700); err != nil {
			return inst, fmt.Errorf("volume %s: %w", v.Name, err)
		}
	}
	envBytes := supervisor.EncodeEnv(revealEnv(l.env))
	if err := hostfs.WriteFileAtomic(filepath.Join(dir, envFile), envBytes, 0o600); err != nil {
		return inst, err
	}
	ls := launchSpec{
		Identity: id, Provider: p.key, Executable: p.supervisorExe,
		Spec: supervisor.Spec{
			Protocol: supervisor.Protocol,
			Argv:     slices.Clone(l.argv), EnvFile: envFile,
			WorkDir: workDir, StopTimeout: duration(p.stopTimeout),
			ProgramSHA256: s.BuildDigest,
		},
	}
	if len(l.sensitiveArgs) > 0 {
		for _, i := range l.sensitiveArgs {
			ls.Argv[i] = spec.Redacted
		}
		ls.SensitiveArgs = l.sensitiveArgs
		ls.ArgvFile = argvFile
		if err := hostfs.WriteJSON(filepath.Join(dir, argvFile), l.argv, 0o600); err != nil {
			return inst, err
		}
	}
	for k, v := range l.env {
		if v.IsSensitive() {
			ls.SensitiveEnv = append(ls.SensitiveEnv, k)
		}
	}
	slices.Sort(ls.SensitiveEnv)
	if err := hostfs.WriteJSON(filepath.Join(dir, specFile), ls, 0o644); err != nil {
		return inst, err
	}
	var res *spec.Resources
	if s.Resources != nil {
		r := *s.Resources
		res = &r
	}
	rec := record{
		Identity: id, Provider: p.key, Ports: providers.ReplicaPorts(s, id.Replica),
		ConfigFiles: digests, EnvSHA256: hostfs.SHA256Hex(envBytes), Volumes: l.volumes,
		Resources: res, CreatedAt: time.Now().UTC(),
	}
	if err := hostfs.WriteJSON(filepath.Join(dir, identityFile), rec, 0o644); err != nil {
		return inst, err
	}

	sup, exited, err := p.spawn(dir)
	if err != nil {
		return inst, fmt.Errorf("start the supervisor: %w", err)
	}
	started = true
	if err := hostfs.WriteFileAtomic(filepath.Join(dir, supPidFile), []byte(strconv.Itoa(sup)+"\n"), 0o644); err != nil {
		return inst, err
	}
	if err := p.waitStarted(ctx, dir, exited); err != nil {
		// The supervisor itself failed: nothing runs, nothing is kept.
		os.RemoveAll(dir)
		return inst, err
	}
	if !exists(filepath.Join(dir, specFile)) {
		// Removed while it started: it runs, or not, without tend.
		if lost := p.lostReplicas(id.ManagedBy, id.Server); len(lost) > 0 {
			return inst, p.lostError(lost)
		}
		what, _ := p.removedDir(dir)
		return inst, fmt.Errorf("%w: %s was removed while the replica started", ErrLost, what)
	}
	return p.observeInstance(dir, id.ManagedBy, id.Server, id.Replica), nil
}

// supervisorEnv is the supervisor's own environment: the basics, and
// nothing of tend's secrets. (The replica's environment is in its env
// file.)
func supervisorEnv() []string {
	var env []string
	for _, k := range []string{"PATH", "HOME", "USER", "LANG", "TZ", "TMPDIR", "GORACE"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// spawn starts the supervisor of dir, detached in a session of its own so
// that it outlives this process; exited is closed when it exits while this
// process still runs.
func (p *Provider) spawn(dir string) (pid int, exited <-chan struct{}, err error) {
	logf, err := os.OpenFile(filepath.Join(dir, supLogFile), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return 0, nil, err
	}
	defer logf.Close()
	cmd := exec.Command(p.supervisorExe, superviseArg, dir)
	cmd.Dir = dir
	cmd.Env = supervisorEnv()
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return 0, nil, err
	}
	done := make(chan struct{})
	go func() {
		// Collect the supervisor's exit status, should it exit while tend
		// runs, so that it does not linger as a zombie.
		_ = cmd.Wait()
		close(done)
	}()
	return cmd.Process.Pid, done, nil
}

// waitStarted waits until the supervisor reports the child up or down, for
// at most startWait. It fails only when the supervisor itself exits.
func (p *Provider) waitStarted(ctx context.Context, dir string, exited <-chan struct{}) error {
	deadline := time.NewTimer(startWait)
	defer deadline.Stop()
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	for {
		var st status
		if err := hostfs.ReadJSON(filepath.Join(dir, statusFile), &st); err == nil && st.State != "" && st.State != string(providers.StateStarting) {
			return nil
		}
		select {
		case <-exited:
			if !exists(filepath.Join(dir, specFile)) {
				what, _ := p.removedDir(dir)
				return fmt.Errorf("%w: %s was removed while the replica started, and its supervisor exited", ErrLost, what)
			}
			var st status
			if err := hostfs.ReadJSON(filepath.Join(dir, statusFile), &st); err == nil {
				if st.Message == "stopped by tend" {
					return nil
				}
				return fmt.Errorf("the supervisor exited at once: %s", st.Message)
			}
			msg := lastLine(filepath.Join(dir, supLogFile))
			if msg == "" {
				msg = "no output"
			}
			if p.supervisorExe != p.exe {
				return fmt.Errorf("the supervisor %s exited at once (%s)", p.supervisorExe, msg)
			}
			return fmt.Errorf("the supervisor exited at once (%s); the program that starts replicas must call process.MaybeSupervise first thing in main", msg)
		case <-ctx.Done():
			return nil
		case <-deadline.C:
			return nil
		case <-tick.C:
		}
	}
}

func lastLine(path string) string {
	b, _ := os.ReadFile(path)
	b = bytes.TrimRight(b, "\n")
	if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
		b = b[i+1:]
	}
	if len(b) > 300 {
		b = b[len(b)-300:]
	}
	return string(b)
}

// StopReplica stops one instance (SIGTERM to its supervisor, which stops
// the process group within the grace, then SIGKILL) and removes its
// directory. Volumes are kept.
func (p *Provider) StopReplica(ctx context.Context, req providers.StopRequest) providers.StopResponse {
	dir, err := p.instDirOf(req.Instance)
	if err != nil {
		return providers.StopResponse{Err: err}
	}
	unlock := p.lock(dir)
	defer unlock()
	if err := p.stop(ctx, dir, req.Grace); err != nil {
		return providers.StopResponse{Err: fmt.Errorf("stop %s replica %d: %w", req.Instance.Server, req.Instance.Replica, err)}
	}
	return providers.StopResponse{}
}

// instanceFiles is what an instance directory says about its processes.
type instanceFiles struct {
	ls     launchSpec
	lsErr  error
	st     status
	stErr  error
	supPid int
	argv   []string // the real argv
}

func readInstance(dir string) instanceFiles {
	var f instanceFiles
	f.lsErr = hostfs.ReadJSON(filepath.Join(dir, specFile), &f.ls)
	f.stErr = hostfs.ReadJSON(filepath.Join(dir, statusFile), &f.st)
	f.supPid = f.st.SupervisorPID
	if f.supPid == 0 {
		if b, err := os.ReadFile(filepath.Join(dir, supPidFile)); err == nil {
			f.supPid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		}
	}
	f.argv = f.ls.Argv
	if f.ls.ArgvFile != "" {
		var argv []string
		if err := hostfs.ReadJSON(filepath.Join(dir, f.ls.ArgvFile), &argv); err == nil {
			f.argv = argv
		}
	}
	return f
}

func (p *Provider) supervisorAlive(dir string, f instanceFiles) bool {
	return f.supPid > 0 && isSupervisor(f.supPid, dir, p.supervisorExe, p.exe, f.ls.Executable)
}

// stop stops the processes of dir and removes it. Only processes proven to
// be this instance's are signalled.
func (p *Provider) stop(ctx context.Context, dir string, grace time.Duration) error {
	if _, err := os.Lstat(dir); errors.Is(err, os.ErrNotExist) {
		// Gone is stopped, unless its supervisor runs on without it.
		if pids := supervisorsOf(dir); len(pids) > 0 {
			what, _ := p.removedDir(dir)
			return fmt.Errorf("%w: %s was removed, but its supervisor (pid %d) runs on: stop it with kill %d (it stops the replica within the stop timeout)",
				ErrLost, what, pids[0], pids[0])
		}
		return nil
	}
	if err := p.stopProcesses(ctx, dir, grace); err != nil {
		return err
	}
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	_ = os.Remove(filepath.Dir(dir)) // the server's directory, once empty
	return nil
}

// stopProcesses stops the supervisor of dir and the child's process group
// (SIGTERM to the supervisor, which stops the child within the grace, then
// SIGKILL) and waits until they are gone. It keeps dir. Only processes
// proven to be this instance's are signalled.
func (p *Provider) stopProcesses(ctx context.Context, dir string, grace time.Duration) error {
	f := readInstance(dir)
	if grace <= 0 {
		grace = time.Duration(f.ls.StopTimeout)
	}
	if grace <= 0 {
		grace = p.stopTimeout
	}
	type child struct {
		pid       int
		startedAt time.Time
	}
	children := []child{{f.st.ChildPID, f.st.ChildStartedAt}}
	if p.supervisorAlive(dir, f) {
		_ = hostfs.WriteJSON(filepath.Join(dir, stopFile), stopRequest{Grace: duration(grace)}, 0o644)
		_ = syscall.Kill(f.supPid, syscall.SIGTERM)
		if !waitUntil(ctx, grace+stopSlack, func() bool { return !p.supervisorAlive(dir, f) }) {
			if p.supervisorAlive(dir, f) {
				_ = syscall.Kill(f.supPid, syscall.SIGKILL)
			}
		}
		// The child the supervisor ran last (it may have restarted it).
		var st status
		if hostfs.ReadJSON(filepath.Join(dir, statusFile), &st) == nil && st.ChildPID != 0 {
			children = append(children, child{st.ChildPID, st.ChildStartedAt})
		}
	}
	ours := func(c child) bool { return c.pid > 0 && isChild(c.pid, f.supPid, dir, f.argv, c.startedAt) }
	for _, c := range children {
		if ours(c) {
			signalGroup(c.pid, syscall.SIGKILL)
		}
	}
	gone := func() bool {
		if p.supervisorAlive(dir, f) {
			return false
		}
		for _, c := range children {
			if ours(c) {
				return false
			}
		}
		return true
	}
	if !waitUntil(context.Background(), killWait, gone) {
		return fmt.Errorf("its processes did not exit after SIGKILL; %s is kept", dir)
	}
	return nil
}

// waitUntil polls cond until it holds, for at most d or until ctx ends.
func waitUntil(ctx context.Context, d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		select {
		case <-ctx.Done():
			return cond()
		case <-time.After(pollEvery):
		}
	}
}
