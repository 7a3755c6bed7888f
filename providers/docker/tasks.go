package docker

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/tendhq/tend/providers"
	"github.com/tendhq/tend/providers/internal/hostfs"
)

// Exec implements providers.Execer: docker exec in a replica, or a one-off
// container from the server's image.
func (p *Provider) Exec(ctx context.Context, req providers.ExecRequest) providers.ExecResponse {
	if len(req.Command) == 0 {
		return providers.ExecResponse{Err: errors.New("exec: no command")}
	}
	stdout, stderr := req.Stdout, req.Stderr
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil {
		stderr = io.Discard
	}
	if req.Instance != nil {
		code, err := p.execIn(ctx, req.Instance.ID, req.Command, stdout, stderr)
		return providers.ExecResponse{ExitCode: code, Err: err}
	}
	if req.Desired == nil || req.Desired.Server == nil {
		return providers.ExecResponse{Err: errors.New("exec: no server and no replica to run the task for")}
	}
	code, err := p.task(ctx, req.Desired, req.Command, stdout, stderr)
	return providers.ExecResponse{ExitCode: code, Err: err}
}

func (p *Provider) execIn(ctx context.Context, id string, cmd []string, stdout, stderr io.Writer) (int, error) {
	ex, err := p.cli.ContainerExecCreate(ctx, id, container.ExecOptions{Cmd: cmd, AttachStdout: true, AttachStderr: true})
	if err != nil {
		return -1, p.engineErr("exec in container "+shortID(id), err)
	}
	att, err := p.cli.ContainerExecAttach(ctx, ex.ID, container.ExecAttachOptions{})
	if err != nil {
		return -1, p.engineErr("attach to exec in container "+shortID(id), err)
	}
	defer att.Close()
	done := make(chan error, 1)
	go func() { _, err := stdcopy.StdCopy(stdout, stderr, att.Reader); done <- err }()
	select {
	case err := <-done:
		if err != nil && !errors.Is(err, io.EOF) {
			return -1, fmt.Errorf("read the output of exec in container %s: %w", shortID(id), err)
		}
	case <-ctx.Done():
		return -1, ctx.Err()
	}
	ins, err := p.cli.ContainerExecInspect(ctx, ex.ID)
	if err != nil {
		return -1, p.engineErr("inspect exec in container "+shortID(id), err)
	}
	if ins.Running {
		return -1, fmt.Errorf("exec in container %s: the command still runs after its output ended", shortID(id))
	}
	return ins.ExitCode, nil
}

// task runs a one-off container from the server's image with its env,
// config files and network, and removes it.
func (p *Provider) task(ctx context.Context, d *providers.Desired, cmd []string, stdout, stderr io.Writer) (int, error) {
	managedBy := p.managedByOf(d.ManagedBy)
	b, err := p.prepare(ctx, d, managedBy, 0)
	if err != nil {
		return -1, err
	}
	cfg := *b.config
	cfg.Entrypoint, cfg.Cmd = cmd, nil
	cfg.ExposedPorts = nil
	cfg.Labels = map[string]string{
		providers.LabelManagedBy: managedBy,
		providers.LabelServer:    d.Server.Name,
		providers.LabelVersion:   d.Server.Version,
		LabelTask:                "1",
	}
	hc := *b.host
	hc.PortBindings, hc.Mounts = nil, nil
	hc.RestartPolicy = container.RestartPolicy{Name: container.RestartPolicyDisabled}
	if err := p.ensureNetwork(ctx, managedBy); err != nil {
		return -1, err
	}
	name := fmt.Sprintf("%s.task.%d", b.name, time.Now().UnixNano())
	created, err := p.cli.ContainerCreate(ctx, &cfg, &hc, b.net, nil, name)
	if err != nil {
		return -1, b.red.Error(p.engineErr("create the task container", err))
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		p.remove(cctx, created.ID, 0)
	}()
	if len(b.files) > 0 {
		if err := p.copyFiles(ctx, created.ID, b.files); err != nil {
			return -1, b.red.Error(err)
		}
	}
	waitC, errC := p.cli.ContainerWait(ctx, created.ID, container.WaitConditionNextExit)
	if err := p.cli.ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
		return -1, b.red.Error(p.engineErr("start the task container", err))
	}
	var code int
	select {
	case w := <-waitC:
		code = int(w.StatusCode)
		if w.Error != nil && w.Error.Message != "" {
			return -1, fmt.Errorf("the task container: %s", w.Error.Message)
		}
	case err := <-errC:
		return -1, p.engineErr("wait for the task container", err)
	case <-ctx.Done():
		return -1, ctx.Err()
	}
	logs, err := p.cli.ContainerLogs(ctx, created.ID, container.LogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		return code, p.engineErr("read the task's output", err)
	}
	defer logs.Close()
	if _, err := stdcopy.StdCopy(stdout, stderr, logs); err != nil {
		return code, fmt.Errorf("read the task's output: %w", err)
	}
	return code, nil
}

// Stats implements providers.Statser from the Engine's stats API (one
// sample, with the previous one the Engine keeps). Threads is the pids
// cgroup's count of the container (its tasks: every thread of every
// process in it). Connections are the established TCP connections of the
// container's network namespace (see connections); they are unknown where
// tend cannot read them reliably. CPU is in percent of one core, or of the
// container's CPU limit when it has one (resources { cpu }).
func (p *Provider) Stats(ctx context.Context, inst providers.Instance) (providers.Stats, error) {
	// The connections are read while the Engine samples.
	type inspected struct {
		conns    int
		nanoCPUs int64
	}
	conns := make(chan inspected, 1)
	go func() {
		n, cpu := p.connections(ctx, inst.ID)
		conns <- inspected{n, cpu}
	}()
	rc, err := p.cli.ContainerStats(ctx, inst.ID, false)
	if err != nil {
		return providers.Stats{}, p.engineErr("stats of "+inst.Server+" replica "+fmt.Sprint(inst.Replica), err)
	}
	defer rc.Body.Close()
	var s container.StatsResponse
	if err := json.NewDecoder(rc.Body).Decode(&s); err != nil {
		return providers.Stats{}, fmt.Errorf("decode the stats of %s replica %d: %w", inst.Server, inst.Replica, err)
	}
	out := statsOf(s)
	in := <-conns
	if in.conns >= 0 {
		out.Connections, out.HasConnections = in.conns, true
	}
	if in.nanoCPUs > 0 {
		// In percent of the CPU limit, as on the other providers (and
		// as a scaling block's cpu_percent means).
		out.CPUPercent = out.CPUPercent * 1e9 / float64(in.nanoCPUs)
	}
	return out, nil
}

// connections counts the TCP connections in state ESTABLISHED of a
// container's network namespace, from /proc/PID/net/tcp and tcp6 of its
// init process on this host, or returns -1 where that would not be the
// container's count: the Engine runs elsewhere (another host, a VM, a
// rootless Engine's pid namespace: the pid the Engine gives is not the
// container's process here, which its /proc/PID/cgroup tells), or the
// container shares a namespace (network_mode host or container:NAME).
// Containers that join this container's namespace are counted with it.
//
// It also returns the container's CPU limit in billionths of a core (0:
// none, or unknown).
func (p *Provider) connections(ctx context.Context, id string) (int, int64) {
	c, err := p.cli.ContainerInspect(ctx, id)
	if err != nil || c.ContainerJSONBase == nil || c.HostConfig == nil {
		return -1, 0
	}
	nano := c.HostConfig.NanoCPUs
	if c.State == nil || !c.State.Running || c.State.Pid <= 0 || !c.HostConfig.NetworkMode.IsPrivate() {
		return -1, nano
	}
	pid := c.State.Pid
	n, err := hostfs.NetnsEstablishedTCP(pid)
	if err != nil {
		return -1, nano
	}
	// Read after the table, so that the table read was of the
	// container's process (its cgroup paths name the container).
	cg, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil || !bytes.Contains(cg, []byte(c.ID)) {
		return -1, nano
	}
	return n, nano
}

func statsOf(s container.StatsResponse) providers.Stats {
	var out providers.Stats
	cpuDelta := float64(s.CPUStats.CPUUsage.TotalUsage) - float64(s.PreCPUStats.CPUUsage.TotalUsage)
	sysDelta := float64(s.CPUStats.SystemUsage) - float64(s.PreCPUStats.SystemUsage)
	cpus := float64(s.CPUStats.OnlineCPUs)
	if cpus == 0 {
		cpus = float64(len(s.CPUStats.CPUUsage.PercpuUsage))
	}
	if cpuDelta > 0 && sysDelta > 0 && cpus > 0 {
		out.CPUPercent = cpuDelta / sysDelta * cpus * 100
	}
	// The working set, as docker stats shows it: usage less the page
	// cache that can be reclaimed.
	mem := int64(s.MemoryStats.Usage)
	if v, ok := s.MemoryStats.Stats["inactive_file"]; ok && int64(v) < mem {
		mem -= int64(v)
	} else if v, ok := s.MemoryStats.Stats["total_inactive_file"]; ok && int64(v) < mem {
		mem -= int64(v)
	}
	out.MemoryBytes = mem
	if s.MemoryStats.Limit > 0 {
		out.MemoryPercent = float64(mem) / float64(s.MemoryStats.Limit) * 100
	}
	// 0 is an Engine without the pids cgroup: a running container has a
	// task at least.
	if s.PidsStats.Current > 0 {
		out.Threads, out.HasThreads = int(s.PidsStats.Current), true
	}
	return out
}

// Logs implements providers.Logger: the last lines of the container's
// output, stdout and stderr interleaved.
func (p *Provider) Logs(ctx context.Context, inst providers.Instance, lines int) ([]byte, error) {
	tail := "all"
	if lines > 0 {
		tail = fmt.Sprint(lines)
	}
	rc, err := p.cli.ContainerLogs(ctx, inst.ID, container.LogsOptions{ShowStdout: true, ShowStderr: true, Tail: tail})
	if err != nil {
		return nil, p.engineErr("logs of "+inst.Server+" replica "+fmt.Sprint(inst.Replica), err)
	}
	defer rc.Close()
	var buf bytes.Buffer
	if _, err := stdcopy.StdCopy(&buf, &buf, rc); err != nil {
		return buf.Bytes(), err
	}
	return buf.Bytes(), nil
}

var _ providers.LogStreamer = (*Provider)(nil)

// StreamLogs implements providers.LogStreamer through the Engine's
// container logs: the last req.Tail lines, since req.Since, and with
// req.Follow what the container writes next, until ctx ends or the
// container stops.
func (p *Provider) StreamLogs(ctx context.Context, req providers.LogRequest) error {
	inst := req.Instance
	opts := container.LogsOptions{ShowStdout: true, ShowStderr: true, Tail: "all", Follow: req.Follow}
	if req.Tail > 0 {
		opts.Tail = fmt.Sprint(req.Tail)
	}
	if !req.Since.IsZero() {
		opts.Since = fmt.Sprintf("%d.%09d", req.Since.Unix(), req.Since.Nanosecond())
	}
	rc, err := p.cli.ContainerLogs(ctx, inst.ID, opts)
	if err != nil {
		return p.engineErr("logs of "+inst.Server+" replica "+fmt.Sprint(inst.Replica), err)
	}
	defer rc.Close()
	if _, err := stdcopy.StdCopy(req.Out, req.Out, rc); err != nil && ctx.Err() == nil {
		return fmt.Errorf("logs of %s replica %d: %w", inst.Server, inst.Replica, err)
	}
	return nil
}

// volumeMount checks that the instance's container mounts a volume at
// vpath.
func (p *Provider) volumeMount(ctx context.Context, inst providers.Instance, vpath string) error {
	c, err := p.cli.ContainerInspect(ctx, inst.ID)
	if err != nil {
		return p.engineErr("inspect "+inst.Server+" replica "+fmt.Sprint(inst.Replica), err)
	}
	for _, m := range c.Mounts {
		if path.Clean(m.Destination) == path.Clean(vpath) {
			return nil
		}
	}
	return fmt.Errorf("%s replica %d has no volume at %s", inst.Server, inst.Replica, vpath)
}

// CopyOut implements providers.DataCopier: the volume at vpath as a tar
// stream, names relative to the volume.
func (p *Provider) CopyOut(ctx context.Context, inst providers.Instance, vpath string, w io.Writer) error {
	if err := p.volumeMount(ctx, inst, vpath); err != nil {
		return err
	}
	rc, _, err := p.cli.CopyFromContainer(ctx, inst.ID, vpath)
	if err != nil {
		return p.engineErr("copy "+vpath+" out of "+inst.Server+" replica "+fmt.Sprint(inst.Replica), err)
	}
	defer rc.Close()
	// The Engine names entries after the directory (data/x); rebase them
	// on the volume itself (x).
	tr := tar.NewReader(rc)
	tw := tar.NewWriter(w)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("read the archive of %s: %w", vpath, err)
		}
		_, rest, ok := strings.Cut(strings.TrimPrefix(hdr.Name, "./"), "/")
		if !ok || rest == "" {
			continue // the volume's own directory
		}
		hdr.Name = rest
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return err
		}
	}
	return tw.Close()
}

// CopyIn implements providers.DataCopier: it extracts a tar stream into the
// volume at vpath, of a running or a halted container. The whole stream is
// read and checked first, so a bad stream changes nothing; files of the
// volume that are not in the stream stay (the Engine API cannot delete
// them; see the package documentation).
func (p *Provider) CopyIn(ctx context.Context, inst providers.Instance, vpath string, r io.Reader) error {
	if err := p.volumeMount(ctx, inst, vpath); err != nil {
		return err
	}
	f, err := os.CreateTemp("", "tend-copyin-*.tar")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	tr := tar.NewReader(io.TeeReader(r, f))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("the stream to copy into %s is not a tar archive: %w", vpath, err)
		}
		name := path.Clean(strings.TrimPrefix(hdr.Name, "./"))
		if path.IsAbs(hdr.Name) || name == ".." || strings.HasPrefix(name, "../") {
			return fmt.Errorf("entry %q points outside the volume", hdr.Name)
		}
		if hdr.Typeflag == tar.TypeSymlink || hdr.Typeflag == tar.TypeLink {
			if path.IsAbs(hdr.Linkname) || strings.HasPrefix(path.Clean(path.Join(path.Dir(name), hdr.Linkname)), "../") {
				return fmt.Errorf("entry %q links outside the volume", hdr.Name)
			}
		}
		if _, err := io.Copy(io.Discard, tr); err != nil {
			return fmt.Errorf("the stream to copy into %s is cut short: %w", vpath, err)
		}
	}
	if _, err := io.Copy(io.Discard, io.TeeReader(r, f)); err != nil {
		return err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	if err := p.cli.CopyToContainer(ctx, inst.ID, vpath, f, container.CopyToContainerOptions{}); err != nil {
		return p.engineErr("copy into "+vpath+" of "+inst.Server+" replica "+fmt.Sprint(inst.Replica), err)
	}
	return nil
}
