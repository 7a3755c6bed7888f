package docker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"

	"github.com/tendhq/tend/providers"
	"github.com/tendhq/tend/providers/internal/keylock"
	"github.com/tendhq/tend/spec"
)

// Type is the provider type.
const Type = "docker"

// Labels of tend's own, besides the identity.
const (
	// LabelExpect records what tend set on a container that a person can
	// change afterwards; Observe compares the live container with it.
	LabelExpect = "tend.dev/expect"
	// LabelTask marks a one-off task container (a hook); Observe skips it.
	LabelTask = "tend.dev/task"
)

// fileTime is the modification time of every config file tend copies into
// a container: an edit by hand changes it.
var fileTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// Register adds the docker provider to a registry.
func Register(r *providers.Registry) {
	r.Register(Type, func(p *spec.Provider, env providers.Env) (providers.Provider, error) {
		return New(p, env)
	})
}

// Provider runs replicas as containers on one Docker Engine.
type Provider struct {
	key       string // docker.NAME
	set       spec.DockerSettings
	cli       *client.Client
	checkHost string
	managedBy string
	// stateDir is StateDir/providers/docker.NAME: what reloads changed
	// (see reloadRecord). Empty when tend gave no state directory.
	stateDir string

	locks keylock.Map // by container name
	netMu sync.Mutex  // one network creation at a time
}

var _ interface {
	providers.Provider
	providers.Execer
	providers.Statser
	providers.Logger
	providers.DataCopier
} = (*Provider)(nil)

var _ providers.Halter = (*Provider)(nil)

// New builds a provider from its block. It does not contact the Engine:
// an Engine that is down is reported by the first call that needs it.
func New(p *spec.Provider, env providers.Env) (*Provider, error) {
	set := spec.DockerSettings{Host: "unix:///var/run/docker.sock", PullPolicy: "missing",
		PublishAddress: "127.0.0.1", RestartPolicy: "unless-stopped", StopTimeout: 10 * time.Second}
	if p.Docker != nil {
		set = *p.Docker
	}
	opts := []client.Opt{client.WithHost(set.Host)}
	if set.APIVersion != "" {
		opts = append(opts, client.WithVersion(set.APIVersion))
	} else {
		opts = append(opts, client.WithAPIVersionNegotiation())
	}
	if t := set.TLS; t != nil {
		opts = append(opts, client.WithTLSClientConfig(t.CAFile, t.CertFile, t.KeyFile))
	}
	cli, err := client.NewClientWithOpts(opts...)
	if err != nil {
		return nil, fmt.Errorf("docker host %q: %w", set.Host, err)
	}
	managedBy := env.ManagedBy
	if managedBy == "" {
		managedBy = providers.DefaultManagedBy
	}
	var stateDir string
	if env.StateDir != "" {
		stateDir = filepath.Join(env.StateDir, "providers", p.Key())
	}
	return &Provider{
		key: p.Key(), set: set, cli: cli, checkHost: checkHost(set), managedBy: managedBy, stateDir: stateDir,
	}, nil
}

// checkHost is where tend's checks reach published ports: the publish
// address, or the Engine's host when ports are published on every address.
func checkHost(set spec.DockerSettings) string {
	switch a := set.PublishAddress; a {
	case "", "0.0.0.0", "::":
		if u, err := url.Parse(set.Host); err == nil && (u.Scheme == "tcp" || u.Scheme == "http" || u.Scheme == "https") && u.Hostname() != "" {
			return u.Hostname()
		}
		return "127.0.0.1"
	default:
		return a
	}
}

// Type implements providers.Provider.
func (p *Provider) Type() string { return Type }

// Client is the Engine client, for tests and tools beside the provider.
func (p *Provider) Client() *client.Client { return p.cli }

// Close releases the client's connections.
func (p *Provider) Close() error { return p.cli.Close() }

func (p *Provider) managedByOf(m string) string {
	if m == "" {
		return p.managedBy
	}
	return m
}

var nameUnsafe = regexp.MustCompile(`[^a-zA-Z0-9_.-]`)

// containerName is the name of replica i of server.
func containerName(managedBy, server string, replica int) string {
	return nameUnsafe.ReplaceAllString(managedBy, "-") + "." + server + "." + strconv.Itoa(replica)
}

// volumeName is the named volume of replica i of server at vol.
func volumeName(managedBy, server, vol string, replica int) string {
	return nameUnsafe.ReplaceAllString(managedBy+"."+server+"."+vol+"."+strconv.Itoa(replica), "-")
}

func (p *Provider) lock(name string) func() { return p.locks.Lock(name) }

// engineErr says what failed in words a person can act on.
func (p *Provider) engineErr(what string, err error) error {
	if err == nil {
		return nil
	}
	if client.IsErrConnectionFailed(err) {
		return fmt.Errorf("%s: the Docker Engine at %s is not reachable (is dockerd running, and may tend use it?): %w", what, p.set.Host, err)
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return fmt.Errorf("%s: %w", what, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// expect is what tend set on a container that a person can change
// afterwards; it is stored as the LabelExpect label.
type expect struct {
	NanoCPUs int64          `json:"cpu,omitempty"`
	Memory   int64          `json:"mem,omitempty"`
	Restart  string         `json:"restart"`
	Network  string         `json:"net,omitempty"`
	Name     string         `json:"name"`
	Ports    map[string]int `json:"ports,omitempty"` // name → container port
	Files    []expectFile   `json:"files,omitempty"`
}

type expectFile struct {
	Path string      `json:"path"`
	Size int64       `json:"size"`
	Mode os.FileMode `json:"mode"`
}

// ---- observe ----

// Observe implements providers.Provider: one list call with a label
// filter, then an inspect of each container.
func (p *Provider) Observe(ctx context.Context, req providers.ObserveRequest) providers.ObserveResponse {
	managedBy := p.managedByOf(req.ManagedBy)
	f := filters.NewArgs(filters.Arg("label", providers.LabelManagedBy+"="+managedBy))
	if req.Server != "" {
		f.Add("label", providers.LabelServer+"="+req.Server)
	}
	list, err := p.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	if err != nil {
		return providers.ObserveResponse{Err: p.engineErr("list containers", err)}
	}
	// One container per replica: a replace interrupted half way can leave
	// two (M.S.i and M.S.i.next); the running one, then the one with the
	// plain name, wins, and the next StartReplica or StopReplica removes
	// the other.
	type key struct {
		server  string
		replica int
	}
	chosen := map[key]container.Summary{}
	for _, c := range list {
		if _, task := c.Labels[LabelTask]; task {
			continue
		}
		r, err := strconv.Atoi(c.Labels[providers.LabelReplica])
		if err != nil || c.Labels[providers.LabelServer] == "" {
			continue
		}
		k := key{c.Labels[providers.LabelServer], r}
		if prev, ok := chosen[k]; !ok || better(c, prev) {
			chosen[k] = c
		}
	}
	out := make([]providers.Instance, 0, len(chosen))
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	var firstErr error
	for _, c := range chosen {
		wg.Add(1)
		sem <- struct{}{}
		go func(c container.Summary) {
			defer wg.Done()
			defer func() { <-sem }()
			inst, err := p.inspect(ctx, c.ID)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if cerrdefs.IsNotFound(err) { // removed since the list
					return
				}
				if firstErr == nil {
					firstErr = err
				}
				return
			}
			out = append(out, inst)
		}(c)
	}
	wg.Wait()
	if firstErr != nil {
		return providers.ObserveResponse{Err: firstErr}
	}
	providers.SortInstances(out)
	return providers.ObserveResponse{Instances: out}
}

// better reports whether container a should stand for its replica rather
// than b.
func better(a, b container.Summary) bool {
	ar, br := a.State == "running", b.State == "running"
	if ar != br {
		return ar
	}
	an, bn := !strings.HasSuffix(firstName(a.Names), ".next"), !strings.HasSuffix(firstName(b.Names), ".next")
	if an != bn {
		return an
	}
	return a.Created > b.Created
}

func firstName(names []string) string {
	if len(names) == 0 {
		return ""
	}
	return strings.TrimPrefix(names[0], "/")
}

// inspect reads one container as an instance.
func (p *Provider) inspect(ctx context.Context, id string) (providers.Instance, error) {
	c, err := p.cli.ContainerInspect(ctx, id)
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return providers.Instance{}, err
		}
		return providers.Instance{}, p.engineErr("inspect container "+shortID(id), err)
	}
	return p.instance(ctx, c), nil
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// instance turns an inspected container into an instance, with its drift.
func (p *Provider) instance(ctx context.Context, c container.InspectResponse) providers.Instance {
	labels := c.Config.Labels
	r, _ := strconv.Atoi(labels[providers.LabelReplica])
	inst := providers.Instance{
		Identity: providers.Identity{
			ManagedBy: labels[providers.LabelManagedBy],
			Server:    labels[providers.LabelServer],
			Replica:   r,
			SpecHash:  labels[providers.LabelSpecHash],
			Revision:  labels[providers.LabelRevision],
			Version:   labels[providers.LabelVersion],
		},
		ID:       c.ID,
		Provider: p.key,
		Host:     p.checkHost,
		Restarts: c.RestartCount,
	}
	var exp expect
	expOK := json.Unmarshal([]byte(labels[LabelExpect]), &exp) == nil
	if r := p.readReload(c.ID); r != nil {
		// Reloaded since its creation: it runs what the reload gave it.
		inst.SpecHash, inst.Revision, inst.Version = r.SpecHash, r.Revision, r.Version
		exp, expOK = r.Expect, true
	}
	if expOK {
		inst.Ports = map[string]int{}
		for name, cport := range exp.Ports {
			for _, b := range c.HostConfig.PortBindings[natPort(cport)] {
				if n, err := strconv.Atoi(b.HostPort); err == nil {
					inst.Ports[name] = n
				}
			}
		}
	}
	st := c.State
	if st != nil {
		inst.StartedAt, _ = time.Parse(time.RFC3339Nano, st.StartedAt)
		switch {
		case st.Paused:
			inst.State = providers.StateUnknown
			inst.Message = "paused by hand (docker pause)"
		case st.Restarting:
			inst.State = providers.StateStarting
			if c.RestartCount >= 2 {
				inst.State = providers.StateCrashing
			}
			inst.Message = fmt.Sprintf("restarting after it exited with code %d (%d restarts)", st.ExitCode, c.RestartCount)
			inst.ExitCode = st.ExitCode
		case st.Running:
			inst.State = providers.StateRunning
			if h := st.Health; h != nil && h.Status == "starting" {
				inst.State = providers.StateStarting
				inst.Message = "the image's health check is starting"
			}
		case st.Status == "created":
			inst.State = providers.StateExited
			inst.Message = "created but never started"
		default:
			inst.State = providers.StateExited
			inst.ExitCode = st.ExitCode
			inst.Message = fmt.Sprintf("exited with code %d", st.ExitCode)
			if st.OOMKilled {
				inst.Message += ", killed for using more memory than its limit"
			}
			if st.Error != "" {
				inst.Message += ": " + st.Error
			}
		}
	}
	if !expOK {
		inst.Drift = append(inst.Drift, "the "+LabelExpect+" label is missing or unreadable")
		return inst
	}
	inst.Drift = p.drift(ctx, c, exp)
	return inst
}

// drift compares what a person can change on a live container with what
// tend set.
func (p *Provider) drift(ctx context.Context, c container.InspectResponse, exp expect) []string {
	var out []string
	hc := c.HostConfig
	if hc.NanoCPUs != exp.NanoCPUs {
		out = append(out, fmt.Sprintf("cpu limit is %s, tend set %s", cpus(hc.NanoCPUs), cpus(exp.NanoCPUs)))
	}
	if hc.Memory != exp.Memory {
		out = append(out, fmt.Sprintf("memory limit is %s, tend set %s", bytesOf(hc.Memory), bytesOf(exp.Memory)))
	}
	if string(hc.RestartPolicy.Name) != exp.Restart {
		out = append(out, fmt.Sprintf("restart policy is %q, tend set %q", hc.RestartPolicy.Name, exp.Restart))
	}
	if name := strings.TrimPrefix(c.Name, "/"); name != exp.Name && name != exp.Name+".next" {
		out = append(out, fmt.Sprintf("renamed to %s (tend named it %s)", name, exp.Name))
	}
	if c.State != nil && c.State.Paused {
		out = append(out, "paused")
	}
	if c.NetworkSettings != nil {
		want := exp.Network
		if want == "" {
			want = "bridge"
		}
		var nets []string
		for n := range c.NetworkSettings.Networks {
			nets = append(nets, n)
		}
		sort.Strings(nets)
		if len(nets) != 1 || nets[0] != want {
			out = append(out, fmt.Sprintf("networks are %s, tend attached %s", strings.Join(quoteAll(nets), ", "), strconv.Quote(want)))
		}
	}
	for _, f := range exp.Files {
		st, err := p.cli.ContainerStatPath(ctx, c.ID, f.Path)
		switch {
		case err != nil:
			out = append(out, fmt.Sprintf("config file %s is gone", f.Path))
		case st.Size != f.Size || st.Mode.Perm() != f.Mode.Perm() || !st.Mtime.Equal(fileTime):
			out = append(out, fmt.Sprintf("config file %s was changed by hand", f.Path))
		}
	}
	return out
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strconv.Quote(s)
	}
	if len(out) == 0 {
		return []string{"none"}
	}
	return out
}

func cpus(n int64) string {
	if n == 0 {
		return "none"
	}
	return strconv.FormatFloat(float64(n)/1e9, 'f', -1, 64)
}

func bytesOf(n int64) string {
	if n == 0 {
		return "none"
	}
	return strconv.FormatInt(n, 10) + " bytes"
}

// ---- stop ----

// StopReplica implements providers.Provider: it stops and removes every
// container of the instance's replica (a half-done replace may have left
// two). Volumes are kept.
func (p *Provider) StopReplica(ctx context.Context, req providers.StopRequest) providers.StopResponse {
	inst := req.Instance
	managedBy := p.managedByOf(inst.ManagedBy)
	unlock := p.lock(containerName(managedBy, inst.Server, inst.Replica))
	defer unlock()
	ids, err := p.replicaContainers(ctx, managedBy, inst.Server, inst.Replica)
	if err != nil {
		return providers.StopResponse{Err: err}
	}
	if inst.ID != "" && !containsID(ids, inst.ID) {
		ids = append(ids, inst.ID)
	}
	for _, id := range ids {
		if err := p.remove(ctx, id, req.Grace); err != nil {
			return providers.StopResponse{Err: fmt.Errorf("stop %s replica %d: %w", inst.Server, inst.Replica, err)}
		}
	}
	return providers.StopResponse{}
}

func containsID(ids []string, id string) bool {
	for _, x := range ids {
		if x == id || strings.HasPrefix(x, id) {
			return true
		}
	}
	return false
}

// replicaContainers lists the ids of every container of one replica.
func (p *Provider) replicaContainers(ctx context.Context, managedBy, server string, replica int) ([]string, error) {
	f := filters.NewArgs(
		filters.Arg("label", providers.LabelManagedBy+"="+managedBy),
		filters.Arg("label", providers.LabelServer+"="+server),
		filters.Arg("label", providers.LabelReplica+"="+strconv.Itoa(replica)),
	)
	list, err := p.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	if err != nil {
		return nil, p.engineErr("list containers", err)
	}
	var ids []string
	for _, c := range list {
		if _, task := c.Labels[LabelTask]; !task {
			ids = append(ids, c.ID)
		}
	}
	return ids, nil
}

// remove stops a container gracefully (SIGTERM, then SIGKILL after grace)
// and removes it; a container already gone is fine.
func (p *Provider) remove(ctx context.Context, id string, grace time.Duration) error {
	if err := p.stopContainer(ctx, id, grace); err != nil {
		return err
	}
	if err := p.cli.ContainerRemove(ctx, id, container.RemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
		if strings.Contains(err.Error(), "is already in progress") {
			return nil
		}
		return p.engineErr("remove container "+shortID(id), err)
	}
	p.forgetReload(id)
	return nil
}

// ---- images and networks ----

// ensureImage makes the image present according to the pull policy and
// returns it.
func (p *Provider) ensureImage(ctx context.Context, ref string) (image.InspectResponse, error) {
	if p.set.PullPolicy != "always" {
		img, err := p.cli.ImageInspect(ctx, ref)
		if err == nil {
			return img, nil
		}
		if !cerrdefs.IsNotFound(err) {
			return img, p.engineErr("inspect image "+ref, err)
		}
		if p.set.PullPolicy == "never" {
			return img, fmt.Errorf("image %s is not present on the Docker host at %s, and pull_policy is \"never\"", ref, p.set.Host)
		}
	}
	if err := p.pull(ctx, ref); err != nil {
		return image.InspectResponse{}, fmt.Errorf("image %s is not present on the Docker host at %s and could not be pulled: %w", ref, p.set.Host, err)
	}
	img, err := p.cli.ImageInspect(ctx, ref)
	if err != nil {
		return img, p.engineErr("inspect image "+ref+" after pulling it", err)
	}
	return img, nil
}

func (p *Provider) pull(ctx context.Context, ref string) error {
	auth, secret, note, err := p.registryAuth(ctx, ref)
	if err != nil {
		return err
	}
	err = p.pullWith(ctx, ref, auth)
	if err != nil && !client.IsErrConnectionFailed(err) {
		msg := err.Error()
		if secret != "" {
			msg = strings.ReplaceAll(msg, secret, "(sensitive)")
		}
		return fmt.Errorf("%s (pulled %s)", msg, note)
	}
	return err
}

func (p *Provider) pullWith(ctx context.Context, ref, auth string) error {
	rc, err := p.cli.ImagePull(ctx, ref, image.PullOptions{RegistryAuth: auth})
	if err != nil {
		if client.IsErrConnectionFailed(err) {
			return p.engineErr("pull", err)
		}
		return err
	}
	defer rc.Close()
	dec := json.NewDecoder(rc)
	for {
		// The progress stream's lines; only errors matter here.
		var m struct {
			Error       string `json:"error"`
			ErrorDetail struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
		}
		if err := dec.Decode(&m); err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
		if m.ErrorDetail.Message != "" {
			return errors.New(m.ErrorDetail.Message)
		}
		if m.Error != "" {
			return errors.New(m.Error)
		}
	}
}

// ensureNetwork creates the provider's network when it is missing.
func (p *Provider) ensureNetwork(ctx context.Context, managedBy string) error {
	if p.set.Network == "" {
		return nil
	}
	// The Engine lets two networks share a name; two replicas starting at
	// once must not both create it.
	p.netMu.Lock()
	defer p.netMu.Unlock()
	_, err := p.cli.NetworkInspect(ctx, p.set.Network, network.InspectOptions{})
	if err == nil {
		return nil
	}
	if !cerrdefs.IsNotFound(err) {
		return p.engineErr("inspect network "+p.set.Network, err)
	}
	_, err = p.cli.NetworkCreate(ctx, p.set.Network, network.CreateOptions{
		Driver: "bridge",
		Labels: map[string]string{providers.LabelManagedBy: managedBy},
	})
	if err != nil && !strings.Contains(err.Error(), "already exists") {
		return p.engineErr("create network "+p.set.Network, err)
	}
	return nil
}
