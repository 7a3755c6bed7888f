package process

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"syscall"

	"github.com/tendhq/tend/providers"
	"github.com/tendhq/tend/providers/internal/hostfs"
	"github.com/tendhq/tend/providers/process/supervisor"
)

var _ providers.ConfigReloader = (*Provider)(nil)

// reloadSignals maps a reload block's signal to the signal sent.
var reloadSignals = map[string]syscall.Signal{"HUP": syscall.SIGHUP, "USR1": syscall.SIGUSR1, "USR2": syscall.SIGUSR2}

// ReloadConfig implements providers.ConfigReloader: it writes the config
// files into the replica's working directory, records the new identity in
// identity.json (the supervisor and its child keep running, and spec.json,
// which only the supervisor reads, is left as it was) and signals the
// child, the replica's main process.
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
	dir, err := p.instanceDir(managedBy, s.Name, replica)
	if err != nil {
		return fail(err)
	}
	l, err := p.prepare(d, managedBy, replica)
	if err != nil {
		return fail(err)
	}
	if err := l.command(s); err != nil {
		return fail(err)
	}
	unlock := p.lock(dir)
	defer unlock()
	var rec record
	if err := hostfs.ReadJSON(filepath.Join(dir, identityFile), &rec); err != nil {
		return fail(fmt.Errorf("the replica's record cannot be read: %s", hostfs.ShortErr(err)))
	}
	f := readInstance(dir)
	if f.lsErr != nil || f.stErr != nil {
		return fail(errors.New("the replica's supervisor has not reported yet"))
	}
	if hostfs.SHA256Hex(supervisor.EncodeEnv(revealEnv(l.env))) != rec.EnvSHA256 {
		return fail(errors.New("its environment would change too, which needs a restart"))
	}
	if !slices.Equal(l.argv, f.argv) {
		return fail(errors.New("its command would change too, which needs a restart"))
	}
	st := f.st
	if !p.supervisorAlive(dir, f) || st.ChildPID <= 0 || !isChild(st.ChildPID, f.supPid, dir, f.argv, st.ChildStartedAt) {
		return fail(errors.New("it is not running"))
	}
	workDir := f.ls.WorkDir
	if workDir == "" {
		workDir = filepath.Join(dir, workDirName)
	}
	digests, err := writeConfigs(workDir, l.configs)
	if err != nil {
		return fail(l.red.Error(err))
	}
	for _, old := range rec.ConfigFiles {
		if !slices.ContainsFunc(digests, func(n fileDigest) bool { return n.Path == old.Path }) {
			if err := os.Remove(filepath.Join(workDir, old.Path)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fail(err)
			}
		}
	}
	// The signal first: a tend that dies before the record is written
	// leaves a replica that a plan reloads again, not one that is taken
	// to run files it never read.
	if sig != 0 {
		if err := syscall.Kill(st.ChildPID, sig); err != nil {
			return fail(fmt.Errorf("send SIG%s to pid %d: %w", req.Signal, st.ChildPID, err))
		}
	}
	id := d.Identity(replica)
	id.ManagedBy = managedBy
	rec.Identity, rec.ConfigFiles = id, digests
	if err := hostfs.WriteJSON(filepath.Join(dir, identityFile), rec, 0o644); err != nil {
		return fail(err)
	}
	return p.observeInstance(dir, managedBy, s.Name, replica), nil
}
