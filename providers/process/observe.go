package process

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/tendhq/tend/providers"
	"github.com/tendhq/tend/providers/internal/hostfs"
)

// Observe lists every instance of req.ManagedBy under the provider's root:
// desired servers and orphans alike. It reads files and /proc only; it
// changes nothing and never waits. Replicas whose instance directories are
// gone while their supervisors run (the state directory removed) make it
// fail with ErrLost, naming them, beside the instances it did find.
func (p *Provider) Observe(ctx context.Context, req providers.ObserveRequest) providers.ObserveResponse {
	managedBy := p.managedByOf(req.ManagedBy)
	if err := checkComponent("managed-by identity", managedBy); err != nil {
		return providers.ObserveResponse{Err: err}
	}
	out, err := p.observe(ctx, managedBy, req.Server)
	if err != nil {
		return providers.ObserveResponse{Err: err}
	}
	// Replicas tend lost track of keep running: say so, rather than let a
	// plan start new ones beside them.
	if lost := p.lostSinceScan(managedBy, req.Server); len(lost) > 0 {
		return providers.ObserveResponse{Instances: out, Err: fmt.Errorf("observe %s: %w", p.key, p.lostError(lost))}
	}
	return providers.ObserveResponse{Instances: out}
}

// lostSinceScan returns the lost replicas of managedBy (of server alone,
// when set), looking through /proc only when needLostScan says the last
// look may be out of date. A look reads every process's command line
// whatever it looks for, so it looks for every server's replicas, and
// what it found stands for all of them until the directories change: a
// first look for one server must not leave the others unlooked for.
func (p *Provider) lostSinceScan(managedBy, server string) []lostReplica {
	if !p.needLostScan(managedBy) {
		return nil
	}
	all := p.lostReplicas(managedBy, "")
	p.lostScanned(managedBy, len(all) > 0)
	if server == "" {
		return all
	}
	var lost []lostReplica
	for _, l := range all {
		if l.server == server {
			lost = append(lost, l)
		}
	}
	return lost
}

// needLostScan reports whether Observe must look through /proc for lost
// replicas (supervisors whose directory is gone), which costs a read of
// every process's command line: on the first observe of managedBy, when
// its directory is gone or is another directory than the last observe saw
// (removed, maybe made anew), and while the last scan found some. Otherwise
// every supervisor's directory is where it was, and a check of one server's
// replicas costs what its replicas cost, not what the host runs.
func (p *Provider) needLostScan(managedBy string) bool {
	fi, err := os.Stat(filepath.Join(p.root, managedBy))
	if err != nil {
		fi = nil
	}
	p.scanMu.Lock()
	defer p.scanMu.Unlock()
	last, ok := p.scan[managedBy]
	switch {
	case !ok, last.lost, fi == nil, last.dir == nil:
		return true
	}
	return !os.SameFile(fi, last.dir)
}

// lostScanned records a look at every server's replicas.
func (p *Provider) lostScanned(managedBy string, found bool) {
	fi, err := os.Stat(filepath.Join(p.root, managedBy))
	if err != nil {
		fi = nil
	}
	p.scanMu.Lock()
	defer p.scanMu.Unlock()
	if p.scan == nil {
		p.scan = map[string]lostScan{}
	}
	p.scan[managedBy] = lostScan{dir: fi, lost: found}
}

// observe lists the instance directories of managedBy: of one server, or
// of every server when server is "".
func (p *Provider) observe(ctx context.Context, managedBy, server string) ([]providers.Instance, error) {
	base := filepath.Join(p.root, managedBy)
	var names []string
	if server != "" {
		// One server: its directory only, whatever else the host runs.
		if err := checkComponent("server name", server); err != nil {
			return nil, err
		}
		names = []string{server}
	} else {
		servers, err := os.ReadDir(base)
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("observe %s: %w", p.key, err)
		}
		for _, srv := range servers {
			if srv.IsDir() {
				names = append(names, srv.Name())
			}
		}
	}
	var out []providers.Instance
	for _, name := range names {
		replicas, err := os.ReadDir(filepath.Join(base, name))
		if err != nil {
			continue // removed meanwhile, or never made
		}
		for _, r := range replicas {
			n, err := strconv.Atoi(r.Name())
			if !r.IsDir() || err != nil || n < 0 || strconv.Itoa(n) != r.Name() {
				continue // volumes/ and strays
			}
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			out = append(out, p.observeInstance(filepath.Join(base, name, r.Name()), managedBy, name, n))
		}
	}
	providers.SortInstances(out)
	return out, nil
}

// observeInstance reports one instance directory.
func (p *Provider) observeInstance(dir, managedBy, server string, replica int) providers.Instance {
	inst := providers.Instance{
		Identity: providers.Identity{ManagedBy: managedBy, Server: server, Replica: replica},
		Provider: p.key,
		Host:     p.host,
	}
	var rec record
	if err := hostfs.ReadJSON(filepath.Join(dir, identityFile), &rec); err != nil {
		// StartReplica writes the record before it starts the supervisor:
		// with a supervisor running, the directory is being removed under
		// it (the state directory deleted, say), and the replica runs on.
		if pids := supervisorsOf(dir); len(pids) > 0 {
			inst.State = providers.StateUnknown
			inst.ID = strconv.Itoa(pids[0])
			inst.Message = fmt.Sprintf("the instance's record cannot be read (%s) while its supervisor (pid %d) runs: is %s being removed?", hostfs.ShortErr(err), pids[0], dir)
			return inst
		}
		inst.State = providers.StateMissing
		inst.Message = "the instance's record cannot be read (" + hostfs.ShortErr(err) + "); it was not started completely"
		return inst
	}
	inst.Identity = rec.Identity
	inst.ManagedBy, inst.Server, inst.Replica = managedBy, server, replica
	inst.Ports = rec.Ports
	inst.StartedAt = rec.CreatedAt

	f := readInstance(dir)
	if f.supPid > 0 {
		inst.ID = strconv.Itoa(f.supPid)
	}
	st := f.st
	inst.Restarts = st.Restarts
	if !st.ChildStartedAt.IsZero() {
		inst.StartedAt = st.ChildStartedAt
	}
	supAlive := p.supervisorAlive(dir, f)
	childAlive := st.ChildPID > 0 && isChild(st.ChildPID, f.supPid, dir, f.argv, st.ChildStartedAt)
	switch {
	case f.supPid == 0 && f.stErr != nil && time.Since(rec.CreatedAt) < startWait:
		// StartReplica is writing the instance right now.
		inst.State = providers.StateStarting
		inst.Message = "being started"
	case !supAlive && !childAlive && exists(filepath.Join(dir, haltedFile)):
		inst.State = providers.StateExited
		inst.Message = "halted by tend"
	case !supAlive:
		inst.State = providers.StateMissing
		msg := "the supervisor is gone"
		if f.supPid > 0 {
			msg = fmt.Sprintf("the supervisor (pid %d) is gone", f.supPid)
		}
		if childAlive {
			msg += fmt.Sprintf("; pid %d still runs, unsupervised", st.ChildPID)
		} else if st.State != "" {
			msg += "; it last reported " + st.State
			if st.Message != "" {
				msg += ": " + st.Message
			}
		}
		inst.Message = msg
	case f.stErr != nil:
		inst.State = providers.StateStarting
		inst.Message = "the supervisor has not reported yet"
	default:
		switch s := providers.State(st.State); s {
		case providers.StateRunning, providers.StateStarting, providers.StateExited, providers.StateCrashing:
			inst.State = s
		default:
			inst.State = providers.StateUnknown
		}
		inst.Message = st.Message
	}
	if st.LastExitCode != nil && (inst.State.Failed() || inst.State == providers.StateUnknown) {
		inst.ExitCode = *st.LastExitCode
	}
	inst.Drift = drift(dir, rec, f, childAlive)
	return inst
}

// drift lists what differs from what StartReplica left: config files and
// the env file changed by hand, a command line that is not the recorded one.
func drift(dir string, rec record, f instanceFiles, childAlive bool) []string {
	var out []string
	workDir := f.ls.WorkDir
	if workDir == "" {
		workDir = filepath.Join(dir, workDirName)
	}
	for _, cf := range rec.ConfigFiles {
		path := filepath.Join(workDir, cf.Path)
		b, err := os.ReadFile(path)
		switch {
		case errors.Is(err, os.ErrNotExist):
			out = append(out, fmt.Sprintf("config file %s was removed by hand", cf.Path))
			continue
		case err != nil:
			out = append(out, fmt.Sprintf("config file %s cannot be read: %s", cf.Path, hostfs.ShortErr(err)))
			continue
		case hostfs.SHA256Hex(b) != cf.SHA256:
			out = append(out, fmt.Sprintf("config file %s was changed by hand", cf.Path))
			continue
		}
		if fi, err := os.Stat(path); err == nil && fi.Mode().Perm() != os.FileMode(cf.Mode).Perm() {
			out = append(out, fmt.Sprintf("config file %s has mode %04o, not %04o as tend wrote it", cf.Path, fi.Mode().Perm(), os.FileMode(cf.Mode).Perm()))
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, envFile))
	switch {
	case errors.Is(err, os.ErrNotExist):
		out = append(out, "the environment file was removed by hand")
	case err != nil:
		out = append(out, "the environment file cannot be read: "+hostfs.ShortErr(err))
	case hostfs.SHA256Hex(b) != rec.EnvSHA256:
		out = append(out, "the environment file was changed by hand")
	}
	if childAlive && len(f.argv) > 0 {
		if got := readCmdline(f.st.ChildPID); got != nil && !slices.Equal(got, f.argv) {
			out = append(out, fmt.Sprintf("the running process (pid %d) has another command line than the one tend started it with", f.st.ChildPID))
		}
	}
	return out
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}
