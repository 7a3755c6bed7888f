package systemd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	sdbus "github.com/coreos/go-systemd/v22/dbus"

	"github.com/tendhq/tend/providers"
	"github.com/tendhq/tend/providers/internal/hostfs"
)

var _ providers.ConfigReloader = (*Provider)(nil)

// reloadSignals maps a reload block's signal to the signal sent.
var reloadSignals = map[string]syscall.Signal{"HUP": syscall.SIGHUP, "USR1": syscall.SIGUSR1, "USR2": syscall.SIGUSR2}

// ReloadConfig implements providers.ConfigReloader: the config files are
// written (as StartReplica writes them, owned by the replica's user), the
// record and the identity part of the unit file take the new spec hash and
// revision (the runtime part, what systemd runs, stays byte for byte, so
// after the daemon-reload systemd restarts nothing), and the signal goes
// to the unit's main process (systemctl kill --kill-whom=main).
func (p *Provider) ReloadConfig(ctx context.Context, req providers.ReloadRequest) (providers.Instance, error) {
	d := req.Desired
	if d == nil || d.Server == nil {
		return providers.Instance{}, errors.New("no server to reload")
	}
	s := d.Server
	replica := req.Instance.Replica
	fail := func(err error) (providers.Instance, error) {
		return providers.Instance{}, fmt.Errorf("reload %s replica %d: %w", s.Name, replica, err)
	}
	var sig syscall.Signal
	if req.Signal != "" {
		var ok bool
		if sig, ok = reloadSignals[req.Signal]; !ok {
			return fail(fmt.Errorf("signal %q is not one a reload sends (HUP, USR1, USR2)", req.Signal))
		}
	}
	managedBy := p.managedByOf(d.ManagedBy)
	l, err := p.prepare(d, managedBy, replica)
	if err != nil {
		return fail(err)
	}
	art, err := p.ensureArtifact(ctx, s)
	if err != nil {
		return fail(l.red.Error(err))
	}
	if err := l.command(s, art); err != nil {
		return fail(l.red.Error(err))
	}
	us := p.unitSpec(l, s)
	runtime, ident, err := renderUnit(us)
	if err != nil {
		return fail(l.red.Error(err))
	}
	content := append(runtime, ident...)
	var envBytes []byte
	if us.EnvFile != "" {
		if envBytes, err = renderEnvFile(fmt.Sprintf("replica %d of server %s", replica, s.Name), l.secretEnv); err != nil {
			return fail(l.red.Error(err))
		}
	}
	conn, err := p.bus(ctx)
	if err != nil {
		return fail(err)
	}
	unlock := p.lock(l.unit)
	defer unlock()
	unitPath := p.unitPath(l.unit)
	recPath := filepath.Join(l.instDir, recordFile)
	old, err := os.ReadFile(unitPath)
	if err != nil {
		return fail(fmt.Errorf("its unit file: %w", err))
	}
	var rec record
	if err := hostfs.ReadJSON(recPath, &rec); err != nil || rec.UnitSHA256 != hostfs.SHA256Hex(old) {
		return fail(errors.New("its unit file is not the one tend wrote"))
	}
	if !bytes.HasPrefix(old, runtime) {
		return fail(errors.New("more than its config files would change (what the unit runs), which needs a restart"))
	}
	if rec.EnvFile != "" || len(envBytes) > 0 {
		b, err := os.ReadFile(filepath.Join(l.instDir, envFile))
		if err != nil || !bytes.Equal(b, envBytes) {
			return fail(errors.New("its environment would change too, which needs a restart"))
		}
	}
	u, err := p.props(ctx, conn, l.unit)
	if err != nil {
		return fail(err)
	}
	if u.Active != "active" || u.Sub != "running" || u.MainPID == 0 {
		return fail(fmt.Errorf("it is not running (%s/%s)", u.Active, u.Sub))
	}
	for _, cf := range l.configs {
		if err := os.MkdirAll(filepath.Dir(cf.path), 0o755); err != nil {
			return fail(fmt.Errorf("config file %s: %w", cf.path, err))
		}
		if err := hostfs.WriteFileAtomic(cf.path, cf.content, cf.mode); err != nil {
			return fail(l.red.Error(fmt.Errorf("config file %s: %w", cf.path, err)))
		}
		if l.user != nil {
			if err := os.Chown(cf.path, l.user.uid, l.user.gid); err != nil {
				return fail(fmt.Errorf("config file %s: %w", cf.path, err))
			}
		}
	}
	// The signal first: a tend that dies before the record is written
	// leaves a replica that a plan reloads again.
	if sig != 0 {
		if err := conn.KillUnitWithTarget(ctx, l.unit, sdbus.Main, int32(sig)); err != nil {
			return fail(p.busErr("send SIG"+req.Signal+" to "+l.unit, err))
		}
	}
	digests := configDigests(l.configs)
	for _, was := range rec.ConfigFiles {
		if !slices.ContainsFunc(digests, func(n fileDigest) bool { return n.Path == was.Path }) {
			if err := os.Remove(was.Path); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fail(err)
			}
		}
	}
	rec.Identity, rec.ConfigFiles = l.id, digests
	rec.UnitSHA256 = hostfs.SHA256Hex(content)
	if err := hostfs.WriteJSON(recPath, rec, 0o644); err != nil {
		return fail(err)
	}
	if err := hostfs.WriteFileAtomic(unitPath, content, 0o644); err != nil {
		return fail(err)
	}
	if err := conn.ReloadContext(ctx); err != nil {
		return fail(p.busErr("daemon-reload", err))
	}
	// The unit is as it was: its process runs on.
	p.waitUnit(ctx, conn, l.unit, time.Second, func(u unitProps) bool { return !u.NeedReload })
	inst, err := p.observeUnit(ctx, conn, managedBy, s.Name, l.unit)
	return inst, l.red.Error(err)
}
