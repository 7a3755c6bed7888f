package docker

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/go-connections/nat"

	"github.com/tendhq/tend/providers"
)

func natPort(n int) nat.Port { return nat.Port(strconv.Itoa(n) + "/tcp") }

// build is one container as tend would create it.
type build struct {
	name   string
	config *container.Config
	host   *container.HostConfig
	net    *network.NetworkingConfig
	files  []fileCopy // copied in before the start
	vols   []string   // named volumes to create
	exp    expect
	red    providers.Redactor
}

type fileCopy struct {
	path     string
	content  []byte
	mode     os.FileMode
	uid, gid int // the owner: the container's user when it is numeric
}

// prepare builds replica i of d as a container, getting its image.
func (p *Provider) prepare(ctx context.Context, d *providers.Desired, managedBy string, replica int) (*build, error) {
	s := d.Server
	if s.Image == "" {
		return nil, errors.New("the server names no image")
	}
	img, err := p.ensureImage(ctx, s.Image)
	if err != nil {
		return nil, err
	}
	b := &build{name: containerName(managedBy, s.Name, replica)}

	// PORT and TEND_PORT_*: inside the container, the declared port.
	extra := map[string]string{}
	for i, pt := range s.Ports {
		if i == 0 {
			extra["PORT"] = strconv.Itoa(pt.Number)
		}
		extra["TEND_PORT_"+strings.ToUpper(strings.ReplaceAll(pt.Name, "-", "_"))] = strconv.Itoa(pt.Number)
	}
	env := providers.ReplicaEnv(d, replica, extra)
	keys := make([]string, 0, len(env))
	for k, v := range env {
		keys = append(keys, k)
		if v.IsSensitive() {
			b.red.Add(v.Reveal())
		}
	}
	sort.Strings(keys)
	envList := make([]string, len(keys))
	for i, k := range keys {
		envList[i] = k + "=" + env[k].Reveal()
	}
	vars := make(map[string]string, len(env))
	for k, v := range env {
		vars[k] = v.Reveal()
	}
	for _, c := range s.Command {
		if c.IsSensitive() {
			b.red.Add(providers.Expand(c.Reveal(), vars))
		}
	}
	for _, a := range s.Args {
		if a.IsSensitive() {
			b.red.Add(providers.Expand(a.Reveal(), vars))
		}
	}

	id := d.Identity(replica)
	id.ManagedBy = managedBy
	labels := map[string]string{}
	for k, v := range s.Labels {
		labels[k] = v
	}
	for k, v := range id.Labels() {
		labels[k] = v
	}

	cfg := &container.Config{
		Image:        s.Image,
		Env:          envList,
		Labels:       labels,
		User:         s.User,
		WorkingDir:   s.WorkDir,
		ExposedPorts: nat.PortSet{},
	}
	if len(s.Command) > 0 {
		argv := providers.ExpandArgv(s, env)
		cfg.Entrypoint = argv[:len(s.Command)]
		cfg.Cmd = argv[len(s.Command):]
		if len(cfg.Cmd) == 0 {
			cfg.Cmd = nil
		}
	} else if len(s.Args) > 0 {
		cfg.Cmd = providers.ExpandArgv(s, env)
	}

	hc := &container.HostConfig{
		PortBindings:  nat.PortMap{},
		RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyMode(p.set.RestartPolicy)},
	}
	if hc.RestartPolicy.Name == "" {
		hc.RestartPolicy.Name = container.RestartPolicyUnlessStopped
	}
	b.exp = expect{Restart: string(hc.RestartPolicy.Name), Network: p.set.Network, Name: b.name, Ports: map[string]int{}}
	for _, pt := range s.Ports {
		np := natPort(pt.Number)
		cfg.ExposedPorts[np] = struct{}{}
		hc.PortBindings[np] = []nat.PortBinding{{HostIP: p.set.PublishAddress, HostPort: strconv.Itoa(pt.Number + replica)}}
		b.exp.Ports[pt.Name] = pt.Number
	}
	if r := s.Resources; r != nil {
		hc.NanoCPUs = r.MilliCPU * 1_000_000
		hc.Memory = r.MemoryBytes
		b.exp.NanoCPUs, b.exp.Memory = hc.NanoCPUs, hc.Memory
	}
	for _, v := range s.Volumes {
		m := mount.Mount{Target: v.Path}
		if v.Source != "" {
			m.Type, m.Source = mount.TypeBind, v.Source
		} else {
			m.Type, m.Source = mount.TypeVolume, volumeName(managedBy, s.Name, v.Name, replica)
			b.vols = append(b.vols, m.Source)
		}
		hc.Mounts = append(hc.Mounts, m)
	}
	if p.set.Network != "" {
		hc.NetworkMode = container.NetworkMode(p.set.Network)
		b.net = &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{
			p.set.Network: {Aliases: []string{s.Name}},
		}}
	}

	// Config files: a relative path is relative to the working directory
	// (the server's, or the image's, or /).
	workDir := s.WorkDir
	if workDir == "" && img.Config != nil {
		workDir = img.Config.WorkingDir
	}
	if workDir == "" {
		workDir = "/"
	}
	user := s.User
	if user == "" && img.Config != nil {
		user = img.Config.User
	}
	uid, gid := numericUser(user)
	for _, f := range s.ConfigFiles {
		p := f.Path
		if !path.IsAbs(p) {
			p = path.Join(workDir, p)
		}
		mode := os.FileMode(f.Mode)
		if mode == 0 {
			mode = 0o644
			if f.Content.IsSensitive() {
				mode = 0o600
			}
		}
		content := []byte(f.Content.Reveal())
		if f.Content.IsSensitive() {
			b.red.Add(f.Content.Reveal())
		}
		b.files = append(b.files, fileCopy{path: p, content: content, mode: mode, uid: uid, gid: gid})
		b.exp.Files = append(b.exp.Files, expectFile{Path: p, Size: int64(len(content)), Mode: mode})
	}
	sort.Slice(b.exp.Files, func(i, j int) bool { return b.exp.Files[i].Path < b.exp.Files[j].Path })

	ej, err := json.Marshal(b.exp)
	if err != nil {
		return nil, err
	}
	labels[LabelExpect] = string(ej)
	b.config, b.host = cfg, hc
	return b, nil
}

// StartReplica implements providers.Provider.
func (p *Provider) StartReplica(ctx context.Context, req providers.StartRequest) providers.StartResponse {
	d := req.Desired
	if d == nil || d.Server == nil {
		return providers.StartResponse{Err: errors.New("no server to start")}
	}
	inst, err := p.startReplica(ctx, d, req.Replica)
	if err != nil {
		return providers.StartResponse{Err: fmt.Errorf("start %s replica %d: %w", d.Server.Name, req.Replica, err)}
	}
	return providers.StartResponse{Instance: inst}
}

func (p *Provider) startReplica(ctx context.Context, d *providers.Desired, replica int) (providers.Instance, error) {
	s := d.Server
	managedBy := p.managedByOf(d.ManagedBy)

	// Everything that can be refused is refused before the running
	// replica is touched.
	b, err := p.prepare(ctx, d, managedBy, replica)
	if err != nil {
		return providers.Instance{}, err
	}
	unlock := p.lock(b.name)
	defer unlock()

	old, err := p.replicaContainers(ctx, managedBy, s.Name, replica)
	if err != nil {
		return providers.Instance{}, err
	}
	// A replica already as tend would create it is left alone.
	if len(old) == 1 {
		if inst, err := p.inspect(ctx, old[0]); err == nil && inst.SpecHash == d.SpecHash &&
			inst.Revision == d.Revision && inst.State == providers.StateRunning && len(inst.Drift) == 0 &&
			p.sameExpect(ctx, old[0], b) {
			return inst, nil
		}
	}

	if err := p.ensureNetwork(ctx, managedBy); err != nil {
		return providers.Instance{}, err
	}
	for _, v := range b.vols {
		if _, err := p.cli.VolumeCreate(ctx, volume.CreateOptions{Name: v, Labels: map[string]string{
			providers.LabelManagedBy: managedBy, providers.LabelServer: s.Name, providers.LabelReplica: strconv.Itoa(replica),
		}}); err != nil {
			return providers.Instance{}, p.engineErr("create volume "+v, err)
		}
	}

	// The new container, created beside the old one.
	next := b.name + ".next"
	for _, id := range old {
		if c, err := p.cli.ContainerInspect(ctx, id); err == nil && strings.TrimPrefix(c.Name, "/") == next {
			if err := p.remove(ctx, id, 0); err != nil {
				return providers.Instance{}, err
			}
		}
	}
	created, err := p.cli.ContainerCreate(ctx, b.config, b.host, b.net, nil, next)
	if err != nil {
		return providers.Instance{}, b.red.Error(p.engineErr("create container", err))
	}
	discard := func() {
		// A fresh context: the caller's may be what failed.
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		p.remove(cctx, created.ID, 0)
	}
	if len(b.files) > 0 {
		if err := p.copyFiles(ctx, created.ID, b.files); err != nil {
			discard()
			return providers.Instance{}, b.red.Error(err)
		}
	}

	// Stop the old, start the new; when the new cannot start, start the
	// old again.
	var wasRunning []string
	for _, id := range old {
		c, err := p.cli.ContainerInspect(ctx, id)
		if err != nil {
			continue
		}
		if strings.TrimPrefix(c.Name, "/") == next {
			continue
		}
		if c.State != nil && (c.State.Running || c.State.Restarting) {
			wasRunning = append(wasRunning, id)
		}
		grace := int(p.set.StopTimeout / time.Second)
		if err := p.cli.ContainerStop(ctx, id, container.StopOptions{Timeout: &grace}); err != nil && !cerrdefs.IsNotFound(err) {
			discard()
			return providers.Instance{}, p.engineErr("stop the running container "+shortID(id), err)
		}
	}
	if err := p.cli.ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
		discard()
		restored := len(wasRunning) > 0 && p.restart(wasRunning)
		return providers.Instance{}, b.red.Error(p.startErr(b, replica, err, restored))
	}
	for _, id := range old {
		if id == created.ID {
			continue
		}
		if err := p.cli.ContainerRemove(ctx, id, container.RemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
			return providers.Instance{}, p.engineErr("remove the old container "+shortID(id), err)
		}
		p.forgetReload(id)
	}
	if err := p.cli.ContainerRename(ctx, created.ID, b.name); err != nil {
		return providers.Instance{}, p.engineErr("rename "+next+" to "+b.name, err)
	}
	inst, err := p.inspect(ctx, created.ID)
	if err != nil {
		return providers.Instance{}, err
	}
	return inst, nil
}

// sameExpect reports whether the live container's expect label matches
// what tend would set now (a change of the provider's settings, such as
// the restart policy, is not in the spec hash).
func (p *Provider) sameExpect(ctx context.Context, id string, b *build) bool {
	c, err := p.cli.ContainerInspect(ctx, id)
	if err != nil || c.Config == nil {
		return false
	}
	return c.Config.Labels[LabelExpect] == b.config.Labels[LabelExpect] && c.Config.Image == b.config.Image
}

// restart starts the containers a failed replace stopped; it reports
// whether all came back.
func (p *Provider) restart(ids []string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ok := true
	for _, id := range ids {
		if err := p.cli.ContainerStart(ctx, id, container.StartOptions{}); err != nil {
			ok = false
		}
	}
	return ok
}

// startErr explains a container that would not start.
func (p *Provider) startErr(b *build, replica int, err error, restored bool) error {
	msg := err.Error()
	var why error
	switch {
	case strings.Contains(msg, "port is already allocated") || strings.Contains(msg, "address already in use"):
		var ports []string
		for _, bs := range b.host.PortBindings {
			for _, pb := range bs {
				ports = append(ports, pb.HostIP+":"+pb.HostPort)
			}
		}
		sort.Strings(ports)
		why = fmt.Errorf("a port of replica %d (%s) is already taken on the Docker host: %w", replica, strings.Join(ports, ", "), err)
	default:
		why = p.engineErr("start the container", err)
	}
	if restored {
		return fmt.Errorf("%w; the replica that ran before was started again", why)
	}
	return why
}

// copyFiles copies config files into a created container, with their
// directories.
func (p *Provider) copyFiles(ctx context.Context, id string, files []fileCopy) error {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	// No directory entries: the Engine makes missing parents (0755) and
	// leaves existing ones, such as /etc, as they are.
	for _, f := range files {
		hdr := &tar.Header{Name: strings.TrimPrefix(f.path, "/"), Typeflag: tar.TypeReg, Mode: int64(f.mode.Perm()),
			Size: int64(len(f.content)), ModTime: fileTime, Uid: f.uid, Gid: f.gid}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := tw.Write(f.content); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := p.cli.CopyToContainer(ctx, id, "/", &buf, container.CopyToContainerOptions{}); err != nil {
		return p.engineErr("copy the config files into the container", err)
	}
	return nil
}

// numericUser returns the uid and gid of a user given as "UID" or
// "UID:GID"; a name gives 0, 0 (the files stay root's).
func numericUser(u string) (int, int) {
	name, group, _ := strings.Cut(u, ":")
	uid, err := strconv.Atoi(name)
	if err != nil {
		return 0, 0
	}
	gid, err := strconv.Atoi(group)
	if err != nil {
		gid = uid
	}
	return uid, gid
}
