package reconcile

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tendhq/tend/providers"
)

// reloadReplicas applies a config-files-only change (ActionReload): for
// each replica in turn, the provider writes the files and records the new
// spec, the replica is told to reload (the signal, command or request of
// the server's reload block), and its checks must pass before the next
// (after a signal, for rollout.verify_for: the replica handles it in its
// own time); then every replica is verified for rollout.verify_for. It returns ""
// when that all passed, else why not, for a fallback to a rolling restart.
func (e *Engine) reloadReplicas(ctx context.Context, prov providers.Provider, d *providers.Desired, c *ServerChange) string {
	s := d.Server
	rl, ok := prov.(providers.ConfigReloader)
	if !ok {
		return fmt.Sprintf("the %s provider cannot give a running replica new config files", prov.Type())
	}
	for _, i := range c.Start {
		resp := prov.Observe(ctx, providers.ObserveRequest{ManagedBy: e.ManagedBy, Server: s.Name})
		if resp.Err != nil {
			return fmt.Sprintf("replica %d was not reloaded: observing it failed: %v", i, resp.Err)
		}
		var inst *providers.Instance
		for k := range resp.Instances {
			if in := resp.Instances[k]; in.Server == s.Name && in.Provider == s.Provider && in.Replica == i {
				inst = &in
			}
		}
		if inst == nil {
			return fmt.Sprintf("replica %d was not reloaded: it is gone", i)
		}
		e.say(s.Name, "reloading replica %d (%s)", i, describeReload(s.Reload))
		got, err := rl.ReloadConfig(ctx, providers.ReloadRequest{Desired: d, Instance: *inst, Signal: s.Reload.Signal})
		if err != nil {
			return fmt.Sprintf("replica %d was not reloaded: %s", i, redact(s, err.Error()))
		}
		if err := e.triggerReload(ctx, prov, d, got); err != nil {
			return fmt.Sprintf("the reload of replica %d failed: %s", i, redact(s, err.Error()))
		}
		// A command or request returns once the replica has reloaded; a
		// signal returns at once, and the replica may still answer from
		// its old config for a moment, so its checks are held for
		// verify_for before the next replica is told.
		var hold time.Duration
		if s.Reload.Signal != "" {
			hold = s.Rollout.VerifyFor
		}
		if err := e.verifyReplicas(ctx, prov, d, []int{i}, hold); err != nil {
			return fmt.Sprintf("replica %d failed its checks after the reload: %s", i, redact(s, err.Error()))
		}
	}
	if s.Replicas == 0 {
		return ""
	}
	e.say(s.Name, "verifying for %s", s.Rollout.VerifyFor)
	if err := e.verifyReplicas(ctx, prov, d, seq(s.Replicas), s.Rollout.VerifyFor); err != nil {
		return "the replicas failed their checks after the reload: " + redact(s, err.Error())
	}
	return ""
}

// triggerReload runs the reload command of a server in or beside one
// replica, or sends its reload request to the replica's port. A signal was
// sent by the provider already.
func (e *Engine) triggerReload(ctx context.Context, prov providers.Provider, d *providers.Desired, inst providers.Instance) error {
	rl := d.Server.Reload
	if rl.Signal != "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, rl.Timeout)
	defer cancel()
	if len(rl.Command) > 0 {
		ex, ok := prov.(providers.Execer)
		if !ok {
			return fmt.Errorf("the %s provider cannot run the reload command", prov.Type())
		}
		argv := make([]string, len(rl.Command))
		for i, v := range rl.Command {
			argv[i] = v.Reveal()
		}
		var out bytes.Buffer
		r := ex.Exec(ctx, providers.ExecRequest{Desired: d, Instance: &inst, Command: argv, Stdout: &out, Stderr: &out})
		if r.Err != nil {
			return fmt.Errorf("the reload command: %w", r.Err)
		}
		if r.ExitCode != 0 {
			if tail := lastBytes(out.String(), 300); tail != "" {
				return fmt.Errorf("the reload command exited with code %d: %s", r.ExitCode, tail)
			}
			return fmt.Errorf("the reload command exited with code %d", r.ExitCode)
		}
		return nil
	}
	port, ok := inst.Ports[rl.Port]
	if !ok {
		return fmt.Errorf("the replica has no port %s to send the reload request to", rl.Port)
	}
	url := "http://" + net.JoinHostPort(inst.Host, strconv.Itoa(port)) + rl.HTTPPath
	var rt http.RoundTripper
	if route := checkRoute(prov, inst); route != nil {
		base, r, err := route("http", port)
		if err != nil {
			return err
		}
		if base != "" {
			url, rt = base+rl.HTTPPath, r
		}
	}
	req, err := http.NewRequestWithContext(ctx, rl.HTTPMethod, url, nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: rt}).Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", rl.HTTPMethod, rl.HTTPPath, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s answered %s: %s", rl.HTTPMethod, rl.HTTPPath, resp.Status, lastBytes(string(body), 300))
	}
	return nil
}

// lastBytes returns the end of s, trimmed, at most n bytes of it.
func lastBytes(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		s = "..." + strings.ToValidUTF8(s[len(s)-n:], "")
	}
	return escapeControl(s)
}
