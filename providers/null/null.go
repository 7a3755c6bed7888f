package null

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"time"

	"github.com/tendhq/tend/providers"
	"github.com/tendhq/tend/spec"
)

// Type is the provider type.
const Type = "null"

var _ providers.Provider = (*Provider)(nil)

// Provider records replicas and runs nothing.
type Provider struct {
	key string
	st  *store
}

// Register adds the null provider type to r.
func Register(r *providers.Registry) {
	r.Register(Type, func(p *spec.Provider, env providers.Env) (providers.Provider, error) {
		pr, err := New(p, env)
		if err != nil {
			return nil, err
		}
		return pr, nil
	})
}

// New returns the null provider of block p, which keeps its records under
// env.StateDir/providers/null.NAME. Nothing is read or written until it is
// used.
func New(p *spec.Provider, env providers.Env) (*Provider, error) {
	if p == nil {
		return nil, errors.New("no provider block")
	}
	if p.Type != "" && p.Type != Type {
		return nil, fmt.Errorf("provider %s is not a null provider", p.Key())
	}
	if p.Name == "" || filepath.Base(p.Name) != p.Name || p.Name == "." || p.Name == ".." {
		return nil, fmt.Errorf("%q is not a provider name", p.Name)
	}
	if env.StateDir == "" {
		return nil, errors.New("the null provider keeps its records in tend's state directory, and has none")
	}
	key := Type + "." + p.Name
	return &Provider{key: key, st: newStore(filepath.Join(env.StateDir, "providers", key))}, nil
}

// Dir is the directory that holds the provider's records.
func (p *Provider) Dir() string { return p.st.dir }

// Close releases the provider's open files (the records stay); it is used
// again by opening them anew.
func (p *Provider) Close() { p.st.close() }

// Type implements providers.Provider.
func (p *Provider) Type() string { return Type }

// Observe implements providers.Provider: the records of req.ManagedBy (of
// req.Server alone when set), every one running, none drifted.
func (p *Provider) Observe(ctx context.Context, req providers.ObserveRequest) providers.ObserveResponse {
	if err := ctx.Err(); err != nil {
		return providers.ObserveResponse{Err: err}
	}
	var out []providers.Instance
	err := p.st.read(func(owner map[string]map[string]replicas) {
		servers := owner[req.ManagedBy]
		if req.Server != "" {
			out = p.appendServer(out, servers[req.Server])
			return
		}
		n := 0
		for _, reps := range servers {
			n += len(reps)
		}
		out = make([]providers.Instance, 0, n)
		for _, name := range sortedKeys(servers) {
			out = p.appendServer(out, servers[name])
		}
	})
	if err != nil {
		return providers.ObserveResponse{Err: fmt.Errorf("reading the records of %s: %w", p.key, err)}
	}
	return providers.ObserveResponse{Instances: out}
}

func (p *Provider) appendServer(out []providers.Instance, reps replicas) []providers.Instance {
	for _, i := range sortedKeys(reps) {
		out = append(out, p.instance(reps[i]))
	}
	return out
}

func (p *Provider) instance(r *record) providers.Instance {
	return providers.Instance{
		Identity: providers.Identity{
			ManagedBy: r.ManagedBy, Server: r.Server, Replica: r.Replica,
			SpecHash: r.SpecHash, Revision: r.Revision, Version: r.Version,
		},
		ID:        r.ID,
		Provider:  p.key,
		State:     providers.StateRunning,
		Message:   "recorded by the null provider; nothing runs",
		Ports:     maps.Clone(r.Ports),
		StartedAt: r.StartedAt,
	}
}

// StartReplica implements providers.Provider: it records the replica (a
// new record in place of the old one), and starts nothing.
func (p *Provider) StartReplica(ctx context.Context, req providers.StartRequest) providers.StartResponse {
	if err := ctx.Err(); err != nil {
		return providers.StartResponse{Err: err}
	}
	d := req.Desired
	if d == nil || d.Server == nil {
		return providers.StartResponse{Err: errors.New("no desired server")}
	}
	if req.Replica < 0 {
		return providers.StartResponse{Err: fmt.Errorf("replica %d: replicas count from 0", req.Replica)}
	}
	id := d.Identity(req.Replica)
	if id.ManagedBy == "" {
		return providers.StartResponse{Err: errors.New("no managed-by identity")}
	}
	r := &record{
		ManagedBy: id.ManagedBy, Server: id.Server, Replica: id.Replica,
		SpecHash: id.SpecHash, Revision: id.Revision, Version: id.Version,
		ID: newID(), Ports: providers.ReplicaPorts(d.Server, req.Replica),
		StartedAt: time.Now().UTC().Round(0),
	}
	if err := p.st.write(r); err != nil {
		return providers.StartResponse{Err: fmt.Errorf("recording %s replica %d in %s: %w", id.Server, id.Replica, p.key, err)}
	}
	return providers.StartResponse{Instance: p.instance(r)}
}

// StopReplica implements providers.Provider: it removes the replica's
// record. A replica without a record is already stopped.
func (p *Provider) StopReplica(ctx context.Context, req providers.StopRequest) providers.StopResponse {
	if err := ctx.Err(); err != nil {
		return providers.StopResponse{Err: err}
	}
	in := req.Instance
	if in.ManagedBy == "" || in.Server == "" {
		return providers.StopResponse{Err: errors.New("the instance names no managed-by or no server")}
	}
	r := &record{ManagedBy: in.ManagedBy, Server: in.Server, Replica: in.Replica, Deleted: true}
	if err := p.st.write(r); err != nil {
		return providers.StopResponse{Err: fmt.Errorf("removing the record of %s replica %d in %s: %w", in.Server, in.Replica, p.key, err)}
	}
	return providers.StopResponse{}
}

func newID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return "null-" + hex.EncodeToString(b[:])
}
