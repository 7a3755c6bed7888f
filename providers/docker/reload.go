package docker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/tendhq/tend/providers"
	"github.com/tendhq/tend/providers/internal/hostfs"
)

var _ providers.ConfigReloader = (*Provider)(nil)

// reloadRecord is what a reload changed on a container whose labels, fixed
// when it was created, still say otherwise: the identity it now runs and
// the config files drift is measured against. It is kept on tend's side,
// in StateDir/providers/docker.NAME/reloaded/CONTAINER-ID.json, and
// removed with the container. Without it (a state directory lost), the
// container reports its labels' spec and is replaced by the next apply.
type reloadRecord struct {
	SpecHash string `json:"spec_hash"`
	Revision string `json:"revision"`
	Version  string `json:"version"`
	Expect   expect `json:"expect"`
}

func (p *Provider) reloadPath(id string) string {
	if p.stateDir == "" || !validID(id) {
		return ""
	}
	return filepath.Join(p.stateDir, "reloaded", id+".json")
}

// validID reports whether id is a container id (hex), safe as a file name.
func validID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for _, c := range id {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// readReload returns the reload record of a container, or nil.
func (p *Provider) readReload(id string) *reloadRecord {
	path := p.reloadPath(id)
	if path == "" {
		return nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var r reloadRecord
	if json.Unmarshal(b, &r) != nil {
		return nil
	}
	return &r
}

// forgetReload removes the reload record of a removed container.
func (p *Provider) forgetReload(id string) {
	if path := p.reloadPath(id); path != "" {
		_ = os.Remove(path)
	}
}

// ReloadConfig implements providers.ConfigReloader: the config files are
// copied into the running container (as at its creation), the new identity
// is recorded beside it (see reloadRecord) and the signal is sent to the
// container's main process (docker kill --signal).
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
	if p.stateDir == "" {
		return fail(errors.New("the docker provider keeps what a reload changed in tend's state directory, and it was given none"))
	}
	switch req.Signal {
	case "", "HUP", "USR1", "USR2":
	default:
		return fail(fmt.Errorf("signal %q is not one a reload sends (HUP, USR1, USR2)", req.Signal))
	}
	managedBy := p.managedByOf(d.ManagedBy)
	unlock := p.lock(containerName(managedBy, s.Name, replica))
	defer unlock()
	c, err := p.cli.ContainerInspect(ctx, req.Instance.ID)
	if err != nil {
		return fail(p.engineErr("inspect container "+shortID(req.Instance.ID), err))
	}
	if c.State == nil || !c.State.Running {
		return fail(errors.New("its container is not running"))
	}
	b, err := p.prepare(ctx, d, managedBy, replica)
	if err != nil {
		return fail(err)
	}
	var was expect
	if r := p.readReload(c.ID); r != nil {
		was = r.Expect
	} else if err := json.Unmarshal([]byte(c.Config.Labels[LabelExpect]), &was); err != nil {
		return fail(fmt.Errorf("the container's %s label cannot be read", LabelExpect))
	}
	now := b.exp
	was.Files, now.Files = nil, nil
	wj, _ := json.Marshal(was)
	nj, _ := json.Marshal(now)
	if string(wj) != string(nj) || c.Config.Image != b.config.Image {
		return fail(errors.New("more than its config files would change (image, ports, limits or network), which needs a new container"))
	}
	for _, kv := range b.config.Env {
		if !slices.Contains(c.Config.Env, kv) {
			return fail(errors.New("its environment would change too, which needs a new container"))
		}
	}
	if err := p.copyFiles(ctx, c.ID, b.files); err != nil {
		return fail(b.red.Error(err))
	}
	// The signal first: a tend that dies before the record is written
	// leaves a container that a plan reloads again.
	if req.Signal != "" {
		if err := p.cli.ContainerKill(ctx, c.ID, "SIG"+req.Signal); err != nil {
			return fail(p.engineErr("send SIG"+req.Signal+" to container "+shortID(c.ID), err))
		}
	}
	rec := reloadRecord{SpecHash: d.SpecHash, Revision: d.Revision, Version: s.Version, Expect: b.exp}
	if err := os.MkdirAll(filepath.Dir(p.reloadPath(c.ID)), 0o700); err != nil {
		return fail(err)
	}
	if err := hostfs.WriteJSON(p.reloadPath(c.ID), rec, 0o600); err != nil {
		return fail(err)
	}
	inst, err := p.inspect(ctx, c.ID)
	if err != nil {
		return fail(err)
	}
	return inst, nil
}
