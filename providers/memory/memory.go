// Package memory is an in-memory provider: replicas are records in a map,
// and their volumes tar streams in another. It stands beside the real
// providers for the engine's unit tests and benchmarks; it is never a
// substitute for a real backend in a provider's own tests. Tests can make
// replicas fail, drift or disappear, and read and write their data.
package memory

import (
	"context"
	"fmt"
	"io"
	"sort"
	"sync"
	"time"

	"github.com/tendhq/tend/providers"
)

var (
	_ providers.Provider = (*Provider)(nil)
	_ providers.Execer   = (*Provider)(nil)
)

// Provider keeps replicas in memory.
type Provider struct {
	mu        sync.Mutex
	key       string
	instances map[string]*providers.Instance // server/replica → instance
	volumes   map[string]map[string][]byte   // server/replica → volume path → tar stream
	stats     map[replicaKey]providers.Stats // what Stats reports (SetStats)
	seq       int

	// FailVersion makes replicas of these "server@version" exit at once
	// (exit code 1), as a broken release would.
	FailVersion map[string]bool
	// FailReplica makes these "server/REPLICA" exit at once, whatever they
	// run (a replica that cannot get what it needs from its host).
	FailReplica map[string]bool
	// ExecExit is the exit code of one-off tasks by their argv[0].
	ExecExit map[string]int
	// ExecOutput is what a one-off task prints, by its argv[0].
	ExecOutput map[string]string
	// ExecStderr is what a one-off task prints on its standard error, by
	// its argv[0].
	ExecStderr map[string]string
	// ExecStdin, when not nil, records what each task read on its
	// standard input, by argv[0]: the task reads its input to the end.
	// When nil, tasks leave their input unread (a stdio check keeps its
	// input open).
	ExecStdin map[string][]byte
	// ExecWrites are files a one-off task writes into the volumes of its
	// server (ExecRequest.Desired), by argv[0], as a migration changes
	// data. A task that exits with a code other than 0 writes nothing.
	ExecWrites map[string][]FileWrite
	// ResumeExit makes the next Resumes of "server/replica" exit at once
	// (exit code 1), as a replica that cannot read restored data would:
	// each such Resume counts one down.
	ResumeExit map[string]int
	// Halts, Resumes, CopyIns and CopyOuts record those calls in order:
	// "server/replica" (with ":path" for copies).
	Halts, Resumes, CopyIns, CopyOuts []string
	// Calls counts StartReplica and StopReplica calls.
	Starts, Stops int
	// StartError, when set, fails StartReplica for that server.
	StartError map[string]error
	// ObserveErr, when set, is asked at every Observe (call counts from
	// 1) and fails it when it returns an error: a backend gone away.
	ObserveErr   func(call int) error
	observeCalls int
	// Settings records the servers given to ApplySettings, in order.
	Settings []string
}

// ApplySettings implements providers.SettingsApplier: it records the call.
func (p *Provider) ApplySettings(_ context.Context, d *providers.Desired) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.Settings = append(p.Settings, d.Server.Name+"@"+d.Server.Version)
	return nil
}

// New returns an empty provider registered under key (TYPE.NAME).
func New(key string) *Provider {
	return &Provider{
		key: key, instances: map[string]*providers.Instance{}, volumes: map[string]map[string][]byte{},
		FailVersion: map[string]bool{}, FailReplica: map[string]bool{}, ExecExit: map[string]int{}, ExecOutput: map[string]string{}, ExecStderr: map[string]string{},
		ExecWrites: map[string][]FileWrite{}, ResumeExit: map[string]int{}, StartError: map[string]error{},
	}
}

func id(server string, replica int) string { return fmt.Sprintf("%s/%d", server, replica) }

// Type implements providers.Provider.
func (p *Provider) Type() string { return "memory" }

// Observe implements providers.Provider.
func (p *Provider) Observe(_ context.Context, req providers.ObserveRequest) providers.ObserveResponse {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.observeCalls++
	if p.ObserveErr != nil {
		if err := p.ObserveErr(p.observeCalls); err != nil {
			return providers.ObserveResponse{Err: err}
		}
	}
	out := make([]providers.Instance, 0, len(p.instances))
	for _, in := range p.instances {
		if in.ManagedBy == req.ManagedBy && (req.Server == "" || in.Server == req.Server) {
			c := *in
			c.Drift = append([]string(nil), in.Drift...)
			out = append(out, c)
		}
	}
	providers.SortInstances(out)
	return providers.ObserveResponse{Instances: out}
}

// StartReplica implements providers.Provider.
func (p *Provider) StartReplica(_ context.Context, req providers.StartRequest) providers.StartResponse {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := req.Desired.Server
	if err := p.StartError[s.Name]; err != nil {
		return providers.StartResponse{Err: err}
	}
	p.Starts++
	p.seq++
	in := &providers.Instance{
		Identity:  req.Desired.Identity(req.Replica),
		ID:        fmt.Sprintf("mem-%d", p.seq),
		Provider:  p.key,
		State:     providers.StateRunning,
		Host:      "127.0.0.1",
		Ports:     providers.ReplicaPorts(s, req.Replica),
		StartedAt: time.Now(),
	}
	if p.FailVersion[s.Name+"@"+s.Version] || p.FailReplica[id(s.Name, req.Replica)] {
		in.State, in.ExitCode, in.Message = providers.StateExited, 1, "exited with code 1"
	}
	p.instances[id(s.Name, req.Replica)] = in
	return providers.StartResponse{Instance: *in}
}

// StopReplica implements providers.Provider. The replica's volumes stay.
func (p *Provider) StopReplica(_ context.Context, req providers.StopRequest) providers.StopResponse {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.Stops++
	delete(p.instances, id(req.Instance.Server, req.Instance.Replica))
	return providers.StopResponse{}
}

// Exec implements providers.Execer: the task prints ExecOutput and
// ExecStderr, reads its input when ExecStdin records it, writes
// ExecWrites and exits with ExecExit, all by its argv[0].
func (p *Provider) Exec(_ context.Context, req providers.ExecRequest) providers.ExecResponse {
	if len(req.Command) == 0 {
		return providers.ExecResponse{Err: fmt.Errorf("empty command")}
	}
	name := req.Command[0]
	p.mu.Lock()
	record := p.ExecStdin != nil
	p.mu.Unlock()
	var stdin []byte
	if record && req.Stdin != nil {
		// Read without the lock: the input may come from a stream that
		// waits on this provider.
		b, err := io.ReadAll(req.Stdin)
		if err != nil {
			return providers.ExecResponse{Err: fmt.Errorf("reading the task's input: %w", err)}
		}
		stdin = b
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if record {
		p.ExecStdin[name] = stdin
	}
	if out := p.ExecOutput[name]; out != "" && req.Stdout != nil {
		_, _ = io.WriteString(req.Stdout, out)
	}
	if out := p.ExecStderr[name]; out != "" && req.Stderr != nil {
		_, _ = io.WriteString(req.Stderr, out)
	}
	code := p.ExecExit[name]
	if code == 0 && req.Desired != nil {
		for _, w := range p.ExecWrites[name] {
			p.writeFile(req.Desired.Server.Name, w.Replica, w)
		}
	}
	return providers.ExecResponse{ExitCode: code}
}

// Crash marks a replica as exited, as if its process died.
func (p *Provider) Crash(server string, replica int, code int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if in, ok := p.instances[id(server, replica)]; ok {
		in.State, in.ExitCode, in.Message = providers.StateExited, code, fmt.Sprintf("exited with code %d", code)
	}
}

// Tamper records a change by hand on a replica.
func (p *Provider) Tamper(server string, replica int, what string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if in, ok := p.instances[id(server, replica)]; ok {
		in.Drift = append(in.Drift, what)
	}
}

// Servers lists the servers that have replicas, sorted.
func (p *Provider) Servers() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	set := map[string]bool{}
	for _, in := range p.instances {
		set[in.Server] = true
	}
	out := make([]string, 0, len(set))
	for s := range set {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}
