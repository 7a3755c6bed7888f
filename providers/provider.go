package providers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tendhq/tend/spec"
)

// Identity keys, used as labels (docker, kubernetes), unit properties
// (systemd) or recorded next to the process (process).
const (
	LabelManagedBy = "tend.dev/managed-by"
	LabelServer    = "tend.dev/server"
	LabelReplica   = "tend.dev/replica"
	LabelSpecHash  = "tend.dev/spec-hash"
	LabelRevision  = "tend.dev/revision"
	LabelVersion   = "tend.dev/version"
)

// DefaultManagedBy is the managed-by identity of a tend that was given none.
const DefaultManagedBy = "tend"

// Identity is what tend records on every object it creates.
type Identity struct {
	ManagedBy string `json:"managed_by"`
	Server    string `json:"server"`
	Replica   int    `json:"replica"`
	SpecHash  string `json:"spec_hash"`
	Revision  string `json:"revision"`
	Version   string `json:"version"`
}

// Labels returns the identity as labels.
func (id Identity) Labels() map[string]string {
	return map[string]string{
		LabelManagedBy: id.ManagedBy,
		LabelServer:    id.Server,
		LabelReplica:   strconv.Itoa(id.Replica),
		LabelSpecHash:  id.SpecHash,
		LabelRevision:  id.Revision,
		LabelVersion:   id.Version,
	}
}

// Desired is one server as the engine wants it run: the decoded spec, its
// hash, and the source revision it comes from.
type Desired struct {
	Server    *spec.Server
	SpecHash  string
	Revision  string
	ManagedBy string
}

// Identity returns the identity of replica i of d.
func (d *Desired) Identity(replica int) Identity {
	return Identity{
		ManagedBy: d.ManagedBy, Server: d.Server.Name, Replica: replica,
		SpecHash: d.SpecHash, Revision: d.Revision, Version: d.Server.Version,
	}
}

// State is what a replica is doing.
type State string

// Replica states, from the best to the worst.
const (
	StateRunning  State = "running"  // up (checks say whether it is healthy)
	StateStarting State = "starting" // started, not yet up
	StateExited   State = "exited"   // stopped by itself; ExitCode says how
	StateCrashing State = "crashing" // exits again and again (crash loop)
	StateMissing  State = "missing"  // its record exists but its object is gone
	StateUnknown  State = "unknown"
)

// Failed reports whether the state means the replica is not serving and will
// not by itself (verification fails fast on it).
func (s State) Failed() bool {
	return s == StateExited || s == StateCrashing || s == StateMissing
}

// Instance is one replica as its provider sees it.
type Instance struct {
	Identity
	// ID is the provider's own name for the object (a pid, a container id,
	// a unit name).
	ID       string `json:"id"`
	Provider string `json:"provider"` // TYPE.NAME
	State    State  `json:"state"`
	ExitCode int    `json:"exit_code,omitempty"`
	Restarts int    `json:"restarts,omitempty"`
	// Message says why the instance is in its state, for a person.
	Message string `json:"message,omitempty"`
	// Host and Ports are where tend's checks reach the replica.
	Host  string         `json:"host"`
	Ports map[string]int `json:"ports,omitempty"`
	// Drift lists what differs between the live object and what the
	// provider would create from the spec it was created from (the object
	// was changed by hand). Empty when the object is as tend left it.
	Drift     []string  `json:"drift,omitempty"`
	StartedAt time.Time `json:"started_at"`
}

// Provider is the core every backend implements.
type Provider interface {
	// Type is the provider type, such as "process".
	Type() string
	// Observe lists every instance owned by req.ManagedBy, in one bulk call:
	// those of desired servers and orphans alike. It must not change
	// anything.
	Observe(ctx context.Context, req ObserveRequest) ObserveResponse
	// StartReplica brings replica req.Replica of a server to the desired
	// spec: it creates the replica, or replaces the existing one in place.
	// It returns once the replica is started (not necessarily healthy); a
	// replica that fails at once is reported in the instance's state.
	StartReplica(ctx context.Context, req StartRequest) StartResponse
	// StopReplica stops and removes one instance: a graceful stop, then a
	// forced one after req.Grace.
	StopReplica(ctx context.Context, req StopRequest) StopResponse
}

// ObserveRequest asks for every instance owned by ManagedBy.
type ObserveRequest struct {
	ManagedBy string
	// Server, when set, narrows the answer to one server's instances. A
	// provider may ignore it (the caller filters too); honoring it keeps
	// the checks of one server from costing a scan of the whole fleet.
	Server string
}

// ObserveResponse lists instances, sorted by server and replica.
type ObserveResponse struct {
	Instances []Instance
	Err       error
}

// StartRequest starts one replica.
type StartRequest struct {
	Desired *Desired
	Replica int
}

// StartResponse reports the started replica.
type StartResponse struct {
	Instance Instance
	Err      error
}

// StopRequest stops one instance.
type StopRequest struct {
	Instance Instance
	Grace    time.Duration
}

// StopResponse reports a stop.
type StopResponse struct {
	Err error
}

// Execer runs one-off tasks (hooks, migrations, backup dumps, exec checks)
// in the context of a server: its environment, config files and data.
type Execer interface {
	Exec(ctx context.Context, req ExecRequest) ExecResponse
}

// ExecRequest runs Command for a server; with Instance set, in or beside
// that replica.
type ExecRequest struct {
	Desired  *Desired
	Instance *Instance
	Command  []string
	Stdout   io.Writer
	Stderr   io.Writer
	// Stdin, when set, is the task's standard input (a stdio MCP check
	// talks to the task through it); the process provider honours it.
	Stdin io.Reader
}

// ExecResponse says how the task ended.
type ExecResponse struct {
	ExitCode int
	Err      error // the task could not be run at all
}

// SettingsApplier is a provider whose objects hold settings that do not
// change what a replica runs (on Kubernetes: the autoscaler from the
// scaling block, the disruption budget and the rollout strategy). The
// engine calls it when only such settings changed, which restarts nothing.
type SettingsApplier interface {
	ApplySettings(ctx context.Context, d *Desired) error
}

// CheckRouter is a provider whose replicas tend cannot always reach at
// their Instance.Host: the pods of a Kubernetes cluster, seen from outside
// it. The engine's http and mcp checks, and its contract fetches, go the
// way it says.
type CheckRouter interface {
	// CheckRoute returns the URL that stands for scheme://Host:port on
	// the replica (a request to URL+"/path" reaches /path there) and the
	// round tripper that carries requests to it, which authenticates them
	// to the proxy and turns the proxy's own failures into errors. ok is
	// false when checks reach the replica at its Host directly.
	CheckRoute(inst Instance, scheme string, port int) (url string, rt http.RoundTripper, ok bool, err error)
}

// Statser reports resource use, for autoscaling.
type Statser interface {
	Stats(ctx context.Context, inst Instance) (Stats, error)
}

// Stats is one replica's resource use.
//
// Threads and Connections are known only where HasThreads and
// HasConnections say so: a provider that cannot tell leaves them false,
// and the zero Stats knows neither (0 threads is never reported for a
// replica whose threads were not counted). Each provider's Stats says
// which processes it counts.
type Stats struct {
	CPUPercent    float64
	MemoryBytes   int64
	MemoryPercent float64
	// Threads is the number of threads (kernel tasks) of the replica.
	Threads    int
	HasThreads bool
	// Connections is the number of the replica's TCP connections in state
	// ESTABLISHED, IPv4 and IPv6, inbound and outbound.
	Connections    int
	HasConnections bool
}

// CapacityReporter reports what the provider's host (or cluster) can
// hold, for capacity planning (reconcile/capacity).
type CapacityReporter interface {
	Capacity(ctx context.Context) (Capacity, error)
}

// Capacity is what a provider can run replicas on: one host (process,
// systemd, docker), or the schedulable nodes of a cluster (kubernetes,
// with Cluster set; no host at all when no node takes pods).
type Capacity struct {
	Hosts   []HostCapacity `json:"hosts"`
	Cluster bool           `json:"cluster,omitempty"`
}

// HostCapacity is one host's CPU and memory; on Kubernetes, one node's
// allocatable. A zero figure is one the provider could not read.
type HostCapacity struct {
	Name        string `json:"name"`
	MilliCPU    int64  `json:"milli_cpu"`
	MemoryBytes int64  `json:"memory_bytes"`
}

// ThisHost is the capacity of the machine tend runs on, for the providers
// whose replicas run on it (process, systemd): its name, and the CPU and
// memory the provider says its replicas may use.
func ThisHost(ctx context.Context, key string, milliCPU, memoryBytes int64) (Capacity, error) {
	if err := ctx.Err(); err != nil {
		return Capacity{}, err
	}
	name, err := os.Hostname()
	if err != nil {
		return Capacity{}, fmt.Errorf("capacity of %s: the host's name: %w", key, err)
	}
	return Capacity{Hosts: []HostCapacity{{Name: name, MilliCPU: milliCPU, MemoryBytes: memoryBytes}}}, nil
}

// Logger returns the tail of a replica's output.
type Logger interface {
	Logs(ctx context.Context, inst Instance, lines int) ([]byte, error)
}

// LogStreamer is a Logger that also reads a replica's output since a time,
// and follows what it writes next (tend logs -f).
type LogStreamer interface {
	StreamLogs(ctx context.Context, req LogRequest) error
}

// LogRequest asks for a replica's output, written to Out as it is read.
type LogRequest struct {
	Instance Instance
	// Tail is how many of the last lines to write first; 0 or less writes
	// all that is kept.
	Tail int
	// Since, when set, leaves out the lines written before it. A provider
	// that keeps no time for each line refuses it with ErrNoLogTimes.
	Since time.Time
	// Follow keeps writing new output until ctx ends (or, on providers
	// whose logs end with the replica, until the replica stops).
	Follow bool
	Out    io.Writer
}

// ErrNoLogTimes is the error of a LogStreamer asked for logs since a time
// when it keeps no time for each line of output.
var ErrNoLogTimes = errors.New("this provider keeps a replica's output without a time for each line, so it cannot select lines by time")

// ConfigReloader is a provider that gives a running replica new config
// files without replacing it, for servers with a reload block.
type ConfigReloader interface {
	// ReloadConfig writes the config files of req.Desired for the replica
	// of req.Instance, records that replica as running req.Desired (its
	// spec hash and revision: Observe reports them from then on), and,
	// when req.Signal is set, sends that signal to the replica's main
	// process. It refuses, changing nothing, when the replica is not
	// running or when more than its config files would change (the
	// environment, the command). The engine runs a reload command or
	// request itself, after it.
	ReloadConfig(ctx context.Context, req ReloadRequest) (Instance, error)
}

// ReloadRequest gives one replica the config files of Desired.
type ReloadRequest struct {
	Desired  *Desired
	Instance Instance
	// Signal is HUP, USR1 or USR2, or empty to send none.
	Signal string
}

// DataCopier copies a replica's data paths out (backup) and in (restore),
// as a tar stream.
type DataCopier interface {
	CopyOut(ctx context.Context, inst Instance, path string, w io.Writer) error
	CopyIn(ctx context.Context, inst Instance, path string, r io.Reader) error
}

// Halter stops a replica's processes while keeping the replica itself: its
// object, identity and volumes stay, so that DataCopier.CopyIn can replace
// its data while nothing writes it (a restore), and Resume starts the same
// replica again, unchanged. Between the two, Observe reports the replica in
// a failed state (exited or missing); the engine holds the apply lock
// meanwhile, so no pass heals it. A replica that is already halted halts
// again without error, and Resume of a running replica changes nothing.
type Halter interface {
	Halt(ctx context.Context, inst Instance, grace time.Duration) error
	Resume(ctx context.Context, inst Instance) (Instance, error)
}

// VolumeRemover deletes the provider-managed volumes of one replica of a
// server (those without a Source), after the replica is stopped. tend uses
// it only for the throw-away replicas of restore drills; a server's own
// volumes are never removed.
//
// It touches only volumes the provider made for that identity (managed-by,
// server, replica), never a volume with a Source (a host path), and
// refuses while the replica still exists. A volume already gone is no
// error.
type VolumeRemover interface {
	RemoveVolumes(ctx context.Context, d *Desired, replica int) error
}

// ReplicaPorts returns the ports of replica i: on one host, replica i
// listens on each declared port + i.
func ReplicaPorts(s *spec.Server, replica int) map[string]int {
	out := make(map[string]int, len(s.Ports))
	for _, p := range s.Ports {
		out[p.Name] = p.Number + replica
	}
	return out
}

// ReplicaEnv returns the environment of replica i: the server's env plus
// PORT (its first port), TEND_PORT_<NAME> for every port, TEND_REPLICA,
// TEND_SERVER and TEND_VERSION, with $(NAME) references expanded.
func ReplicaEnv(d *Desired, replica int, extra map[string]string) map[string]spec.Value {
	s := d.Server
	base := map[string]string{
		"TEND_SERVER":  s.Name,
		"TEND_REPLICA": strconv.Itoa(replica),
		"TEND_VERSION": s.Version,
	}
	ports := ReplicaPorts(s, replica)
	for i, p := range s.Ports {
		n := ports[p.Name]
		if i == 0 {
			base["PORT"] = strconv.Itoa(n)
		}
		base["TEND_PORT_"+envKey(p.Name)] = strconv.Itoa(n)
	}
	for k, v := range extra {
		base[k] = v
	}
	out := make(map[string]spec.Value, len(base)+len(s.Env))
	for k, v := range base {
		out[k] = spec.Plain(v)
	}
	for k, v := range s.Env {
		out[k] = ExpandValue(v, base)
	}
	return out
}

func envKey(name string) string {
	return strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// Expand replaces $(NAME) with vars[NAME]; $$(NAME) is a literal $(NAME),
// and an unknown $(NAME) stays as written (as Kubernetes does).
func Expand(s string, vars map[string]string) string {
	if !strings.Contains(s, "$(") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '$' && i+1 < len(s) && s[i+1] == '$' && i+2 < len(s) && s[i+2] == '(' {
			b.WriteString("$(")
			i += 2
			continue
		}
		if s[i] == '$' && i+1 < len(s) && s[i+1] == '(' {
			if end := strings.IndexByte(s[i+2:], ')'); end >= 0 {
				name := s[i+2 : i+2+end]
				if v, ok := vars[name]; ok {
					b.WriteString(v)
					i += 2 + end
					continue
				}
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// ExpandValue expands a Value, keeping its sensitivity.
func ExpandValue(v spec.Value, vars map[string]string) spec.Value {
	out := Expand(v.Reveal(), vars)
	if v.IsSensitive() {
		return spec.Sensitive(out)
	}
	return spec.Plain(out)
}

// ExpandArgv expands command and args into one argv, with the replica's
// environment as the variables.
func ExpandArgv(s *spec.Server, env map[string]spec.Value) []string {
	vars := make(map[string]string, len(env))
	for k, v := range env {
		vars[k] = v.Reveal()
	}
	argv := make([]string, 0, len(s.Command)+len(s.Args))
	for _, c := range s.Command {
		argv = append(argv, Expand(c.Reveal(), vars))
	}
	for _, a := range s.Args {
		argv = append(argv, Expand(a.Reveal(), vars))
	}
	return argv
}

// SortInstances orders instances by server, then replica.
func SortInstances(in []Instance) {
	sort.Slice(in, func(i, j int) bool {
		if in[i].Server != in[j].Server {
			return in[i].Server < in[j].Server
		}
		return in[i].Replica < in[j].Replica
	})
}

// Factory builds a provider from its provider block.
type Factory func(p *spec.Provider, env Env) (Provider, error)

// Env is what every provider may use on the reconciler's side.
type Env struct {
	// StateDir is tend's state directory; providers keep their own files
	// under StateDir/providers/TYPE.NAME.
	StateDir string
	// ManagedBy is this tend's identity.
	ManagedBy string
}

// Registry holds provider factories by type and built providers by key.
// It is safe for concurrent use (the daemon's loop and its status API share
// one).
type Registry struct {
	mu        sync.Mutex
	factories map[string]Factory
	built     map[string]Provider
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{factories: map[string]Factory{}, built: map[string]Provider{}}
}

// Register adds a factory for a provider type.
func (r *Registry) Register(typ string, f Factory) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.factories[typ] = f
}

// Add puts an already built provider under a key (TYPE.NAME); tests use it
// to run the engine on an in-memory provider.
func (r *Registry) Add(key string, p Provider) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.built[key] = p
}

// Get returns the provider for key (TYPE.NAME), building it from the
// configuration's provider block (or the implicit process.default) once.
func (r *Registry) Get(cfg *spec.Config, key string, env Env) (Provider, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if p, ok := r.built[key]; ok {
		return p, nil
	}
	block, ok := cfg.Providers[key]
	if !ok && key == spec.DefaultProcessProvider {
		block = &spec.Provider{Type: "process", Name: "default", Process: &spec.ProcessSettings{StopTimeout: 10 * time.Second, Host: "127.0.0.1"}}
		ok = true
	}
	if !ok {
		return nil, fmt.Errorf("no provider %s is declared", key)
	}
	f, ok := r.factories[block.Type]
	if !ok {
		return nil, fmt.Errorf("the %s provider is not available in this build of tend", block.Type)
	}
	p, err := f(block, env)
	if err != nil {
		return nil, fmt.Errorf("provider %s: %w", key, err)
	}
	r.built[key] = p
	return p, nil
}

// SelfScaler is a provider whose backend scales a server's replicas by
// itself from its scaling block (the kubernetes provider, through a
// HorizontalPodAutoscaler). tend's own autoscaler leaves such servers alone.
type SelfScaler interface {
	ScalesItself() bool
}
