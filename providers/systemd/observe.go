package systemd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	sdbus "github.com/coreos/go-systemd/v22/dbus"

	"github.com/tendhq/tend/providers"
	"github.com/tendhq/tend/providers/internal/hostfs"
)

// unitProps are the properties of a unit that tend reads.
type unitProps struct {
	Load, Active, Sub, Result string
	LoadError                 string
	Fragment                  string
	DropIns                   []string
	NeedReload                bool
	MainPID                   uint32
	NRestarts                 uint32
	ExecMainCode              int32 // CLD_EXITED 1, CLD_KILLED 2, CLD_DUMPED 3
	ExecMainStatus            int32
	ExecMainStart             uint64 // µs since the epoch
	CPUUsageNSec              uint64
	MemoryCurrent             uint64
	MemoryMax                 uint64
}

// unset is how systemd says a number is not known (accounting off).
const unset = ^uint64(0)

// props reads a unit's properties: those of the unit, then those of the
// service (which a unit that is not loaded may lack).
func (p *Provider) props(ctx context.Context, conn *sdbus.Conn, unit string) (unitProps, error) {
	var u unitProps
	m, err := conn.GetUnitPropertiesContext(ctx, unit)
	if err != nil {
		return u, p.busErr("read the properties of "+unit, err)
	}
	u.Load = str(m["LoadState"])
	u.Active = str(m["ActiveState"])
	u.Sub = str(m["SubState"])
	u.Fragment = str(m["FragmentPath"])
	u.NeedReload, _ = m["NeedDaemonReload"].(bool)
	if d, ok := m["DropInPaths"].([]string); ok {
		u.DropIns = d
	}
	if le, ok := m["LoadError"].([]any); ok && len(le) == 2 {
		u.LoadError = str(le[1])
	}
	s, err := conn.GetUnitTypePropertiesContext(ctx, unit, "Service")
	if err != nil {
		// A unit that is not loaded may have no service properties.
		if ctx.Err() != nil {
			return u, ctx.Err()
		}
		return u, nil
	}
	u.Result = str(s["Result"])
	u.MainPID, _ = s["MainPID"].(uint32)
	u.NRestarts, _ = s["NRestarts"].(uint32)
	u.ExecMainCode, _ = s["ExecMainCode"].(int32)
	u.ExecMainStatus, _ = s["ExecMainStatus"].(int32)
	u.ExecMainStart, _ = s["ExecMainStartTimestamp"].(uint64)
	u.CPUUsageNSec = num(s["CPUUsageNSec"])
	u.MemoryCurrent = num(s["MemoryCurrent"])
	u.MemoryMax = num(s["MemoryMax"])
	return u, nil
}

func str(v any) string { s, _ := v.(string); return s }

func num(v any) uint64 {
	if n, ok := v.(uint64); ok {
		return n
	}
	return unset
}

// exitCode is the main process's exit code, 128+N when signal N ended it.
func exitCode(code, status int32) int {
	switch code {
	case 2, 3: // killed, dumped
		return 128 + int(status)
	}
	return int(status)
}

// exitText says how the main process ended.
func exitText(code, status int32) string {
	switch code {
	case 0:
		return "it has not run"
	case 2, 3:
		return fmt.Sprintf("killed by signal %d (exit code %d)", status, 128+status)
	}
	if why, ok := systemdExits[status]; ok {
		return fmt.Sprintf("exit code %d: %s", status, why)
	}
	return fmt.Sprintf("exit code %d", status)
}

// systemdExits are the exit codes systemd itself gives a process it could
// not set up (systemd.exec(5)).
var systemdExits = map[int32]string{
	200: "systemd could not enter the working directory",
	203: "systemd could not execute the program",
	209: "systemd could not set up standard output",
	214: "systemd could not set up the scheduling policy",
	216: "systemd could not set up the group",
	217: "systemd could not switch to the user",
	226: "systemd could not set up the file system namespace",
}

// stateOf maps a unit's state to a replica's: active/running is running;
// activating after an exit (auto-restart) is starting, crashing once it
// restarted twice or more; failed is crashing when systemd gave up
// restarting it (start limit hit), else exited; inactive is exited.
// hasFile says whether the unit file is still there.
func stateOf(u unitProps, hasFile bool) (providers.State, int, string) {
	code := exitCode(u.ExecMainCode, u.ExecMainStatus)
	last := exitText(u.ExecMainCode, u.ExecMainStatus)
	switch u.Load {
	case "":
		if !hasFile {
			return providers.StateMissing, 0, "its unit file is gone and systemd does not know the unit"
		}
		return providers.StateExited, code, "systemd has not loaded the unit (it is stopped)"
	case "not-found":
		if u.Active == "inactive" || u.Active == "failed" || u.Active == "" {
			return providers.StateMissing, code, "systemd does not find the unit file"
		}
	case "masked":
		return providers.StateExited, code, "the unit is masked (systemctl mask)"
	case "bad-setting", "error":
		msg := "systemd cannot load the unit file"
		if u.LoadError != "" {
			msg += ": " + u.LoadError
		}
		return providers.StateExited, code, msg
	}
	switch u.Active {
	case "active", "reloading":
		if u.Sub == "running" || u.Sub == "reload" || u.Active == "reloading" {
			return providers.StateRunning, 0, ""
		}
		return providers.StateRunning, 0, "active (" + u.Sub + ")"
	case "activating":
		if u.Sub == "auto-restart" {
			msg := fmt.Sprintf("restarting after its main process ended (%s; %d restarts)", last, u.NRestarts)
			if u.NRestarts >= 2 {
				return providers.StateCrashing, code, msg
			}
			return providers.StateStarting, code, msg
		}
		return providers.StateStarting, 0, "starting (" + u.Sub + ")"
	case "deactivating":
		return providers.StateExited, code, "stopping (" + u.Sub + ")"
	case "failed":
		if u.Result == "start-limit-hit" {
			return providers.StateCrashing, code, fmt.Sprintf("systemd gave up restarting it after %d restarts (start limit hit); last %s", u.NRestarts, last)
		}
		msg := "failed"
		if u.Result != "" {
			msg += " (" + u.Result + ")"
		}
		return providers.StateExited, code, msg + ": " + last
	case "inactive":
		if u.ExecMainCode == 0 {
			return providers.StateExited, 0, "inactive: not started"
		}
		return providers.StateExited, code, "inactive: " + last
	}
	return providers.StateUnknown, code, fmt.Sprintf("unit state %s (%s)", u.Active, u.Sub)
}

// candidate is one unit of this tend: its file, its record, or both.
type candidate struct {
	unit     string
	file     []byte // nil when the unit file is gone
	id       tendIdentity
	hasID    bool
	rec      *record
	recPath  string
	unitPath string
}

// candidates lists the units of managedBy from the unit directory (the
// unit files whose [X-Tend] section names managedBy) and from the
// provider's records, for one server or all.
func (p *Provider) candidates(managedBy, server string) (map[string]*candidate, error) {
	out := map[string]*candidate{}
	files, err := matchDir(p.unitDir, unitPattern(managedBy))
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // removed meanwhile
		}
		id, ok := identityOf(parseUnitFile(b))
		if !ok || id.ManagedBy != managedBy || (server != "" && id.Server != server) {
			continue // not this tend's (or not tend's at all)
		}
		name := filepath.Base(f)
		out[name] = &candidate{unit: name, file: b, id: id, hasID: true, unitPath: f}
	}
	var recs []string
	base := filepath.Join(p.root, encodeName(managedBy))
	servers, _ := os.ReadDir(base)
	for _, srv := range servers {
		if !srv.IsDir() {
			continue
		}
		replicas, _ := os.ReadDir(filepath.Join(base, srv.Name()))
		for _, r := range replicas {
			if r.IsDir() && r.Name() != "volumes" {
				recs = append(recs, filepath.Join(base, srv.Name(), r.Name(), recordFile))
			}
		}
	}
	for _, rp := range recs {
		var rec record
		if err := hostfs.ReadJSON(rp, &rec); err != nil || rec.Unit == "" || rec.ManagedBy != managedBy {
			continue
		}
		if server != "" && rec.Server != server {
			continue
		}
		c := out[rec.Unit]
		if c == nil {
			c = &candidate{unit: rec.Unit, unitPath: p.unitPath(rec.Unit)}
			out[rec.Unit] = c
		}
		r := rec
		c.rec, c.recPath = &r, rp
	}
	return out, nil
}

// matchDir lists the entries of dir whose names match pattern (the
// directory's own name may hold glob characters).
func matchDir(dir, pattern string) ([]string, error) {
	es, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range es {
		if ok, err := filepath.Match(pattern, e.Name()); err != nil {
			return nil, err
		} else if ok && !e.IsDir() {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	return out, nil
}

// Observe lists every instance of req.ManagedBy: the units whose files in
// the unit directory carry its identity, and those the provider has a
// record of, with their state from one ListUnitsByPatterns call and the
// properties of each loaded unit. It changes nothing.
func (p *Provider) Observe(ctx context.Context, req providers.ObserveRequest) providers.ObserveResponse {
	managedBy := p.managedByOf(req.ManagedBy)
	conn, err := p.bus(ctx)
	if err != nil {
		return providers.ObserveResponse{Err: err}
	}
	cands, err := p.candidates(managedBy, req.Server)
	if err != nil {
		return providers.ObserveResponse{Err: fmt.Errorf("observe %s: %w", p.key, err)}
	}
	if len(cands) == 0 {
		return providers.ObserveResponse{}
	}
	list, err := conn.ListUnitsByPatternsContext(ctx, nil, []string{unitPattern(managedBy)})
	if err != nil {
		return providers.ObserveResponse{Err: p.busErr("list the units of "+managedBy, err)}
	}
	loaded := map[string]bool{}
	for _, u := range list {
		loaded[u.Name] = true
	}
	out := make([]providers.Instance, 0, len(cands))
	for _, c := range cands {
		var u unitProps
		if loaded[c.unit] {
			if u, err = p.props(ctx, conn, c.unit); err != nil {
				return providers.ObserveResponse{Err: err}
			}
		}
		out = append(out, p.instance(c, u))
	}
	providers.SortInstances(out)
	return providers.ObserveResponse{Instances: out}
}

// observeUnit reports one unit of managedBy.
func (p *Provider) observeUnit(ctx context.Context, conn *sdbus.Conn, managedBy, server, unit string) (providers.Instance, error) {
	cands, err := p.candidates(managedBy, server)
	if err != nil {
		return providers.Instance{}, err
	}
	c, ok := cands[unit]
	if !ok {
		return providers.Instance{}, fmt.Errorf("unit %s is gone", unit)
	}
	u, err := p.props(ctx, conn, unit)
	if err != nil {
		return providers.Instance{}, err
	}
	return p.instance(c, u), nil
}

// instance builds the instance of one candidate unit.
func (p *Provider) instance(c *candidate, u unitProps) providers.Instance {
	inst := providers.Instance{ID: c.unit, Provider: p.key, Host: p.host}
	switch {
	case c.hasID:
		inst.Identity = c.id.Identity
		inst.Ports = c.id.Ports
	case c.rec != nil:
		inst.Identity = c.rec.Identity
		inst.Ports = c.rec.Ports
	}
	if inst.Ports == nil && c.rec != nil {
		inst.Ports = c.rec.Ports
	}
	inst.State, inst.ExitCode, inst.Message = stateOf(u, c.file != nil)
	inst.Restarts = int(u.NRestarts)
	if u.ExecMainStart > 0 && u.ExecMainStart != unset {
		inst.StartedAt = time.UnixMicro(int64(u.ExecMainStart)).UTC()
	} else if c.rec != nil {
		inst.StartedAt = c.rec.CreatedAt
	}
	inst.Drift = p.drift(c, u)
	return inst
}

// drift lists what differs from what StartReplica wrote: the unit file,
// the environment file and the config files (against the digests of its
// record), and what systemd runs instead (drop-ins, another unit file, a
// daemon-reload not done).
func (p *Provider) drift(c *candidate, u unitProps) []string {
	var out []string
	if c.rec == nil {
		return []string{fmt.Sprintf("tend's record of the unit is missing (%s)", filepath.Join(p.root, "...", recordFile))}
	}
	rec := c.rec
	switch {
	case c.file == nil:
		out = append(out, fmt.Sprintf("the unit file %s was removed by hand", c.unitPath))
	case hostfs.SHA256Hex(c.file) != rec.UnitSHA256:
		out = append(out, fmt.Sprintf("the unit file %s was changed by hand", c.unitPath))
	case u.NeedReload:
		out = append(out, "systemd runs another version of the unit than its file says (a daemon-reload is due)")
	}
	if rec.EnvFile != "" {
		b, err := os.ReadFile(rec.EnvFile)
		switch {
		case errors.Is(err, os.ErrNotExist):
			out = append(out, "the environment file was removed by hand")
		case err != nil:
			out = append(out, "the environment file cannot be read: "+hostfs.ShortErr(err))
		case hostfs.SHA256Hex(b) != rec.EnvSHA256:
			out = append(out, "the environment file was changed by hand")
		default:
			if fi, err := os.Stat(rec.EnvFile); err == nil && fi.Mode().Perm() != 0o600 {
				out = append(out, fmt.Sprintf("the environment file has mode %04o, not 0600", fi.Mode().Perm()))
			}
		}
	}
	for _, cf := range rec.ConfigFiles {
		b, err := os.ReadFile(cf.Path)
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
		if fi, err := os.Stat(cf.Path); err == nil && fi.Mode().Perm() != os.FileMode(cf.Mode).Perm() {
			out = append(out, fmt.Sprintf("config file %s has mode %04o, not %04o as tend wrote it", cf.Path, fi.Mode().Perm(), os.FileMode(cf.Mode).Perm()))
		}
	}
	if len(u.DropIns) > 0 {
		out = append(out, "drop-in files change the unit: "+strings.Join(u.DropIns, ", "))
	}
	if u.Fragment != "" && c.file != nil && filepath.Clean(u.Fragment) != filepath.Clean(c.unitPath) {
		out = append(out, fmt.Sprintf("systemd loads the unit from %s, not from tend's %s", u.Fragment, c.unitPath))
	}
	return out
}
