package systemd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	sdbus "github.com/coreos/go-systemd/v22/dbus"
	"github.com/godbus/dbus/v5"

	"github.com/tendhq/tend/providers"
	"github.com/tendhq/tend/providers/internal/hostfs"
	"github.com/tendhq/tend/spec"
)

// defaultPath is the PATH a bare program name is looked up in when the
// replica's environment sets none (systemd's own default).
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// launch is what StartReplica and Exec work out from a spec before they
// touch anything.
type launch struct {
	id       providers.Identity
	unit     string
	instDir  string
	env      map[string]spec.Value
	plainEnv map[string]string
	// secretEnv is the environment file: the sensitive variables and the
	// sensitive command line items (TEND_ARG_<i>).
	secretEnv  map[string]string
	argv       []string
	secretArgs map[int]string
	workDir    string
	userName   string
	user       *account
	volumes    []volumeRecord
	configs    []configOut
	artifact   string
	red        providers.Redactor
}

type configOut struct {
	path    string // absolute
	content []byte
	mode    os.FileMode
}

// prepare works out replica i of d: its unit, directories, environment,
// volumes and config files. It touches nothing.
func (p *Provider) prepare(d *providers.Desired, managedBy string, replica int) (*launch, error) {
	s := d.Server
	unit, err := unitName(managedBy, s.Name, replica)
	if err != nil {
		return nil, err
	}
	l := &launch{
		unit:    unit,
		instDir: p.instanceDir(managedBy, s.Name, replica),
	}
	l.id = d.Identity(replica)
	l.id.ManagedBy = managedBy
	l.userName = s.User
	if l.userName == "" {
		l.userName = p.user
	}
	if l.user, err = p.lookupUser(l.userName); err != nil {
		return nil, err
	}
	if p.userMode {
		l.userName = "" // the user manager's own user
	}

	l.workDir = filepath.Join(l.instDir, workDirName)
	if w := s.WorkDir; w != "" {
		if filepath.IsAbs(w) {
			l.workDir = filepath.Clean(w)
		} else if cleanRelative(w) {
			l.workDir = filepath.Join(l.workDir, w)
		} else {
			return nil, fmt.Errorf("work_dir %q: not a clean path", w)
		}
	}

	extra := map[string]string{}
	for _, v := range s.Volumes {
		if v.Name == "" {
			return nil, errors.New("a volume has no name")
		}
		host := v.Source
		if host == "" {
			host = p.volumeDir(managedBy, s.Name, v.Name, replica)
		} else if host, err = filepath.Abs(host); err != nil {
			return nil, err
		}
		l.volumes = append(l.volumes, volumeRecord{Name: v.Name, Path: v.Path, HostDir: host})
		extra["TEND_VOLUME_"+envKey(v.Name)] = host
	}
	l.env = providers.ReplicaEnv(d, replica, extra)
	l.plainEnv = map[string]string{}
	l.secretEnv = map[string]string{}
	for k, v := range l.env {
		if v.IsSensitive() {
			l.secretEnv[k] = v.Reveal()
			l.red.Add(v.Reveal())
		} else {
			l.plainEnv[k] = v.Reveal()
		}
	}
	for _, cf := range s.ConfigFiles {
		path := cf.Path
		switch {
		case filepath.IsAbs(path):
			path = filepath.Clean(path)
		case cleanRelative(path):
			path = filepath.Join(l.workDir, path)
		default:
			return nil, fmt.Errorf("config file %s: not a clean path", cf.Path)
		}
		mode := os.FileMode(cf.Mode) & 0o777
		if mode == 0 {
			mode = 0o644
		}
		if cf.Content.IsSensitive() {
			mode &^= 0o077
			l.red.Add(cf.Content.Reveal())
		}
		l.configs = append(l.configs, configOut{path: path, content: []byte(cf.Content.Reveal()), mode: mode})
	}
	return l, nil
}

// command works out the replica's argv: command and args expanded with its
// environment; the program is resolved against the artifact's directory
// (when there is one and the path is relative), tend's working directory
// (a relative path with a slash) or PATH (a bare name). Sensitive items go
// to the environment file.
func (l *launch) command(s *spec.Server, artifact string) error {
	l.artifact = artifact
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
	l.secretArgs = map[int]string{}
	for i, item := range slices.Concat(s.Command, s.Args) {
		if i >= len(argv) {
			break
		}
		if item.IsSensitive() || refersTo(item.Reveal(), secretNames) {
			if i == 0 {
				return errors.New("the command's program is a secret: systemd needs it in the unit file, which holds no secrets")
			}
			name := "TEND_ARG_" + strconv.Itoa(i)
			l.secretArgs[i] = name
			l.secretEnv[name] = argv[i]
			l.red.Add(argv[i])
		}
	}
	path := l.plainEnv["PATH"]
	if path == "" {
		path = defaultPath
	}
	prog, err := resolveProgram(argv[0], artifact, path)
	if err != nil {
		return err
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

// resolveProgram makes a program path absolute and checks that it can be
// run.
func resolveProgram(prog, artifact, path string) (string, error) {
	if prog == "" {
		return "", errors.New("the command's program is empty")
	}
	var abs string
	switch {
	case filepath.IsAbs(prog):
		abs = prog
	case artifact != "":
		abs = filepath.Join(artifact, prog)
		if rel, err := filepath.Rel(artifact, abs); err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
			return "", fmt.Errorf("program %q points outside the artifact", prog)
		}
		if fi, err := os.Stat(abs); err != nil || fi.IsDir() {
			return "", fmt.Errorf("program %q is not in the artifact (%s holds %s)", prog, artifact, listDir(artifact))
		}
	case strings.Contains(prog, "/"):
		var err error
		if abs, err = filepath.Abs(prog); err != nil {
			return "", err
		}
	default:
		for _, dir := range filepath.SplitList(path) {
			if dir == "" || !filepath.IsAbs(dir) {
				continue
			}
			cand := filepath.Join(dir, prog)
			if fi, err := os.Stat(cand); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
				return cand, nil
			}
		}
		return "", fmt.Errorf("program %q is not in PATH (%s)", prog, path)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return "", fmt.Errorf("program %s: %s", abs, hostfs.ShortErr(err))
	}
	if !fi.Mode().IsRegular() || fi.Mode()&0o111 == 0 {
		return "", fmt.Errorf("program %s is not an executable file", abs)
	}
	return abs, nil
}

// listDir names a directory's entries, for a message.
func listDir(dir string) string {
	es, err := os.ReadDir(dir)
	if err != nil || len(es) == 0 {
		return "nothing"
	}
	var names []string
	for _, e := range es {
		if e.Name() == markerFile {
			continue
		}
		n := e.Name()
		if e.IsDir() {
			n += "/"
		}
		names = append(names, n)
		if len(names) == 10 {
			names = append(names, "…")
			break
		}
	}
	if len(names) == 0 {
		return "nothing"
	}
	return strings.Join(names, ", ")
}

func cleanRelative(p string) bool {
	return p != "" && !filepath.IsAbs(p) && filepath.Clean(p) == p && p != "." && p != ".." && !strings.HasPrefix(p, "../")
}

func envKey(name string) string {
	return strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// unitSpec is the unit file of the launch.
func (p *Provider) unitSpec(l *launch, s *spec.Server) unitSpec {
	var res *spec.Resources
	if s.Resources != nil {
		r := *s.Resources
		res = &r
	}
	u := unitSpec{
		ID: l.id, Provider: p.key,
		Argv: l.argv, SecretArgs: l.secretArgs,
		WorkDir: l.workDir, User: l.userName,
		Env: l.plainEnv, Resources: res,
		Ports:    providers.ReplicaPorts(s, l.id.Replica),
		Artifact: l.artifact, WantedBy: p.wantsTarget(),
	}
	if len(l.secretEnv) > 0 {
		u.EnvFile = filepath.Join(l.instDir, envFile)
	}
	return u
}

// StartReplica writes replica req.Replica's unit, environment and config
// files, reloads systemd and (re)starts the unit; a unit already as tend
// would write it, running and without drift, is left alone.
func (p *Provider) StartReplica(ctx context.Context, req providers.StartRequest) providers.StartResponse {
	d := req.Desired
	if d == nil || d.Server == nil {
		return providers.StartResponse{Err: errors.New("no server to start")}
	}
	inst, err := p.startReplica(ctx, d, req.Replica)
	if err != nil {
		return providers.StartResponse{Err: fmt.Errorf("start %s replica %d: %w", d.Server.Name, req.Replica, err)}
	}
	return providers.StartResponse{Instance: inst}
}

func (p *Provider) startReplica(ctx context.Context, d *providers.Desired, replica int) (providers.Instance, error) {
	s := d.Server
	managedBy := p.managedByOf(d.ManagedBy)

	// Everything that can be refused is refused before the running
	// replica is touched: the spec, the artifact, the unit file.
	l, err := p.prepare(d, managedBy, replica)
	if err != nil {
		return providers.Instance{}, err
	}
	art, err := p.ensureArtifact(ctx, s)
	if err != nil {
		return providers.Instance{}, l.red.Error(err)
	}
	if err := l.command(s, art); err != nil {
		return providers.Instance{}, l.red.Error(err)
	}
	us := p.unitSpec(l, s)
	runtime, ident, err := renderUnit(us)
	if err != nil {
		return providers.Instance{}, l.red.Error(err)
	}
	content := append(runtime, ident...)
	var envBytes []byte
	if us.EnvFile != "" {
		if envBytes, err = renderEnvFile(fmt.Sprintf("replica %d of server %s", replica, s.Name), l.secretEnv); err != nil {
			return providers.Instance{}, l.red.Error(err)
		}
	}
	conn, err := p.bus(ctx)
	if err != nil {
		return providers.Instance{}, err
	}

	unlock := p.lock(l.unit)
	defer unlock()
	unitPath := p.unitPath(l.unit)
	recPath := filepath.Join(l.instDir, recordFile)
	old, err := os.ReadFile(unitPath)
	switch {
	case err == nil:
		id, ok := identityOf(parseUnitFile(old))
		if (!ok || id.ManagedBy != managedBy || id.Server != s.Name || id.Replica != replica) && !exists(recPath) {
			return providers.Instance{}, fmt.Errorf("the unit file %s exists and was not written by tend (managed-by %s); tend does not replace it", unitPath, managedBy)
		}
	case !errors.Is(err, os.ErrNotExist):
		return providers.Instance{}, err
	}

	digests := configDigests(l.configs)
	rec := record{
		Identity: l.id, Provider: p.key, Unit: l.unit, UnitFile: unitPath,
		UnitSHA256: hostfs.SHA256Hex(content), EnvFile: us.EnvFile, EnvSHA256: hostfs.SHA256Hex(envBytes),
		PlainEnv: l.plainEnv, SensitiveEnv: sortedKeys(l.secretEnv),
		WorkDir: l.workDir, User: l.userName, Ports: us.Ports, ConfigFiles: digests,
		Volumes: l.volumes, Resources: us.Resources, Artifact: art,
		CreatedAt: time.Now().UTC(),
	}

	// Already as tend would write it: leave the replica alone (when only
	// tend's identity changed, such as the revision, rewrite the file).
	if keep, identOnly := p.unchanged(ctx, conn, l, unitPath, old, runtime, content, envBytes, digests); keep {
		if identOnly {
			var prev record
			if hostfs.ReadJSON(recPath, &prev) == nil && !prev.CreatedAt.IsZero() {
				rec.CreatedAt = prev.CreatedAt
			}
			if err := hostfs.WriteJSON(recPath, rec, 0o644); err != nil {
				return providers.Instance{}, err
			}
			if err := hostfs.WriteFileAtomic(unitPath, content, 0o644); err != nil {
				return providers.Instance{}, err
			}
			if err := conn.ReloadContext(ctx); err != nil {
				return providers.Instance{}, p.busErr("daemon-reload", err)
			}
		}
		return p.observeUnit(ctx, conn, managedBy, s.Name, l.unit)
	}

	if err := p.writeReplica(l, rec, unitPath, content, envBytes); err != nil {
		return providers.Instance{}, l.red.Error(err)
	}
	if err := conn.ReloadContext(ctx); err != nil {
		return providers.Instance{}, p.busErr("daemon-reload", err)
	}
	u, err := p.props(ctx, conn, l.unit)
	if err != nil {
		return providers.Instance{}, err
	}
	switch u.Load {
	case "loaded":
	case "not-found", "":
		return providers.Instance{}, fmt.Errorf("systemd does not find the unit %s after a daemon-reload: is unit_dir %s one of the directories systemd loads units from (such as %s)?", l.unit, p.unitDir, defaultUnitDir)
	default:
		msg := u.LoadError
		if msg == "" {
			msg = "load state " + u.Load
		}
		return providers.Instance{}, l.red.Error(fmt.Errorf("systemd refuses the unit file %s: %s", unitPath, msg))
	}

	// A start resets systemd's start rate limit first: tend's own restarts
	// are not a crash loop.
	_ = conn.ResetFailedUnitContext(ctx, l.unit)
	ch := make(chan string, 1)
	if _, err := conn.RestartUnitContext(ctx, l.unit, "replace", ch); err != nil {
		return providers.Instance{}, l.red.Error(p.busErr("restart "+l.unit, err))
	}
	select {
	case <-ch:
	case <-ctx.Done():
		return providers.Instance{}, ctx.Err()
	case <-time.After(stopTimeout + jobWait):
	}
	p.waitUnit(ctx, conn, l.unit, startWait, func(u unitProps) bool {
		return u.Active == "active" || u.Active == "failed" || u.Sub == "auto-restart"
	})
	if art != "" {
		_ = p.pruneArtifacts(s.Name, art) // best effort: a full disk is no reason to fail a start
	}
	inst, err := p.observeUnit(ctx, conn, managedBy, s.Name, l.unit)
	return inst, l.red.Error(err)
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

func configDigests(cfs []configOut) []fileDigest {
	out := make([]fileDigest, 0, len(cfs))
	for _, cf := range cfs {
		out = append(out, fileDigest{Path: cf.path, SHA256: hostfs.SHA256Hex(cf.content), Mode: octalMode(cf.mode)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// unchanged reports whether the replica already runs as tend would write
// it now, and whether only the identity part of its unit file differs.
func (p *Provider) unchanged(ctx context.Context, conn *sdbus.Conn, l *launch, unitPath string, old, runtime, content, envBytes []byte, digests []fileDigest) (keep, identOnly bool) {
	if old == nil || !bytes.HasPrefix(old, runtime) {
		return false, false
	}
	identOnly = !bytes.Equal(old, content)
	var rec record
	if err := hostfs.ReadJSON(filepath.Join(l.instDir, recordFile), &rec); err != nil || rec.UnitSHA256 != hostfs.SHA256Hex(old) {
		return false, false
	}
	if rec.EnvFile != "" || len(envBytes) > 0 {
		b, err := os.ReadFile(filepath.Join(l.instDir, envFile))
		if err != nil || !bytes.Equal(b, envBytes) {
			return false, false
		}
	}
	if !slices.Equal(rec.ConfigFiles, digests) {
		return false, false
	}
	for _, v := range l.volumes {
		if !exists(v.HostDir) {
			return false, false
		}
	}
	u, err := p.props(ctx, conn, l.unit)
	if err != nil || u.Load != "loaded" || u.Active != "active" || u.Sub != "running" || u.NeedReload || len(u.DropIns) > 0 {
		return false, false
	}
	c := &candidate{unit: l.unit, file: old, rec: &rec, unitPath: unitPath}
	if len(p.drift(c, u)) > 0 {
		return false, false
	}
	return true, identOnly
}

// writeReplica writes the replica's directories, config files,
// environment file, record and unit file, and links the unit into its
// target's wants.
func (p *Provider) writeReplica(l *launch, rec record, unitPath string, content, envBytes []byte) error {
	// The directories down to the work directory and the volumes may be
	// crossed (not listed) by the replica's user; the instance
	// directory's own files are private.
	if err := os.MkdirAll(l.instDir, 0o711); err != nil {
		return err
	}
	for dir := l.instDir; strings.HasPrefix(dir, p.root); dir = filepath.Dir(dir) {
		if err := os.Chmod(dir, 0o711); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(l.workDir, 0o755); err != nil {
		return fmt.Errorf("working directory %s: %w", l.workDir, err)
	}
	if strings.HasPrefix(l.workDir, l.instDir+string(filepath.Separator)) {
		if err := chownTree(filepath.Join(l.instDir, workDirName), l.user); err != nil {
			return err
		}
	}
	for _, cf := range l.configs {
		if err := os.MkdirAll(filepath.Dir(cf.path), 0o755); err != nil {
			return fmt.Errorf("config file %s: %w", cf.path, err)
		}
		if err := hostfs.WriteFileAtomic(cf.path, cf.content, cf.mode); err != nil {
			return fmt.Errorf("config file %s: %w", cf.path, err)
		}
		if l.user != nil {
			if err := os.Chown(cf.path, l.user.uid, l.user.gid); err != nil {
				return fmt.Errorf("config file %s: %w", cf.path, err)
			}
		}
	}
	for _, v := range l.volumes {
		if parent := filepath.Dir(v.HostDir); strings.HasPrefix(parent, p.root+string(filepath.Separator)) {
			if err := os.MkdirAll(parent, 0o711); err != nil {
				return fmt.Errorf("volume %s: %w", v.Name, err)
			}
		}
		if err := os.MkdirAll(v.HostDir, 0o700); err != nil {
			return fmt.Errorf("volume %s: %w", v.Name, err)
		}
		if l.user != nil {
			if err := os.Chown(v.HostDir, l.user.uid, l.user.gid); err != nil {
				return fmt.Errorf("volume %s: %w", v.Name, err)
			}
		}
	}
	envPath := filepath.Join(l.instDir, envFile)
	if len(envBytes) > 0 {
		if err := hostfs.WriteFileAtomic(envPath, envBytes, 0o600); err != nil {
			return err
		}
	} else if err := os.Remove(envPath); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := hostfs.WriteJSON(filepath.Join(l.instDir, recordFile), rec, 0o644); err != nil {
		return err
	}
	if err := os.MkdirAll(p.unitDir, 0o755); err != nil {
		return err
	}
	if err := hostfs.WriteFileAtomic(unitPath, content, 0o644); err != nil {
		return fmt.Errorf("write the unit file: %w", err)
	}
	link := p.wantsLink(l.unit)
	if target, err := os.Readlink(link); err != nil || target != unitPath {
		if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
			return err
		}
		os.Remove(link)
		if err := os.Symlink(unitPath, link); err != nil {
			return fmt.Errorf("link the unit into %s: %w", p.wantsTarget(), err)
		}
	}
	return nil
}

// waitUnit polls the unit's properties until cond holds, for at most d.
func (p *Provider) waitUnit(ctx context.Context, conn *sdbus.Conn, unit string, d time.Duration, cond func(unitProps) bool) (unitProps, bool) {
	deadline := time.Now().Add(d)
	for {
		u, err := p.props(ctx, conn, unit)
		if err == nil && cond(u) {
			return u, true
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return u, false
		}
		select {
		case <-ctx.Done():
		case <-time.After(pollEvery):
		}
	}
}

// StopReplica stops the instance's unit (SIGTERM, then SIGKILL after the
// grace), removes its unit file, environment file and record, and reloads
// systemd. Volumes are kept. A unit that is not this tend's is not touched.
func (p *Provider) StopReplica(ctx context.Context, req providers.StopRequest) providers.StopResponse {
	inst := req.Instance
	if err := p.stopReplica(ctx, inst, req.Grace); err != nil {
		return providers.StopResponse{Err: fmt.Errorf("stop %s replica %d: %w", inst.Server, inst.Replica, err)}
	}
	return providers.StopResponse{}
}

func (p *Provider) stopReplica(ctx context.Context, inst providers.Instance, grace time.Duration) error {
	managedBy := p.managedByOf(inst.ManagedBy)
	unit, err := unitName(managedBy, inst.Server, inst.Replica)
	if err != nil {
		return err
	}
	unlock := p.lock(unit)
	defer unlock()
	instDir := p.instanceDir(managedBy, inst.Server, inst.Replica)
	unitPath := p.unitPath(unit)
	ours := exists(filepath.Join(instDir, recordFile))
	fileExists := false
	if b, err := os.ReadFile(unitPath); err == nil {
		fileExists = true
		if id, ok := identityOf(parseUnitFile(b)); ok && id.ManagedBy == managedBy && id.Server == inst.Server && id.Replica == inst.Replica {
			ours = true
		}
	}
	if !ours {
		// Nothing of this tend's: already stopped, or someone else's unit.
		return nil
	}
	conn, err := p.bus(ctx)
	if err != nil {
		return err
	}
	if err := p.stopUnit(ctx, conn, unit, grace); err != nil {
		return err
	}
	link := p.wantsLink(unit)
	if target, err := os.Readlink(link); err == nil && target == unitPath {
		os.Remove(link)
	}
	if fileExists {
		if err := os.Remove(unitPath); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	if err := conn.ReloadContext(ctx); err != nil {
		return p.busErr("daemon-reload", err)
	}
	_ = conn.ResetFailedUnitContext(ctx, unit)
	if err := os.RemoveAll(instDir); err != nil {
		return err
	}
	// The server's directory, once only its volumes (or nothing) remain.
	serverDir := filepath.Dir(instDir)
	_ = os.Remove(serverDir)
	return nil
}

// stopUnit stops a unit and waits for it, killing what is left after the
// grace.
func (p *Provider) stopUnit(ctx context.Context, conn *sdbus.Conn, unit string, grace time.Duration) error {
	if grace <= 0 {
		grace = stopTimeout
	}
	ch := make(chan string, 1)
	if _, err := conn.StopUnitContext(ctx, unit, "replace", ch); err != nil {
		if isNoSuchUnit(err) {
			return nil
		}
		return p.busErr("stop "+unit, err)
	}
	stopped := func(u unitProps) bool {
		return u.Active == "inactive" || u.Active == "failed" || u.Load == "not-found" && u.Active != "active"
	}
	if _, ok := p.waitUnit(ctx, conn, unit, grace, stopped); ok {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := conn.KillUnitWithTarget(ctx, unit, sdbus.All, int32(syscall.SIGKILL)); err != nil && !isNoSuchUnit(err) {
		return p.busErr("kill "+unit, err)
	}
	if u, ok := p.waitUnit(ctx, conn, unit, 5*time.Second, stopped); !ok {
		return fmt.Errorf("the unit %s is still %s (%s) after SIGKILL", unit, u.Active, u.Sub)
	}
	return nil
}

// isNoSuchUnit reports a D-Bus error saying the unit is not loaded.
func isNoSuchUnit(err error) bool {
	var de dbus.Error
	if errors.As(err, &de) {
		return de.Name == "org.freedesktop.systemd1.NoSuchUnit"
	}
	return false
}
