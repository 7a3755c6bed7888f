package docker

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/tendhq/tend/providers"
	"github.com/tendhq/tend/providers/docker/dockertest"
	"github.com/tendhq/tend/spec"
)

// TestCapacity compares the provider's answer with the Engine's own info,
// read by the test's client and, where the docker CLI is installed, by
// `docker info`.
func TestCapacity(t *testing.T) {
	p, _ := newTestProvider(t, "")
	ctx := ctxT(t)
	c, err := p.Capacity(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Hosts) != 1 || c.Cluster {
		t.Fatalf("Capacity = %+v, want one host", c)
	}
	h := c.Hosts[0]
	info, err := dockertest.Engine(t).Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if h.Name != info.Name || h.MilliCPU != int64(info.NCPU)*1000 || h.MemoryBytes != info.MemTotal || h.MilliCPU <= 0 || h.MemoryBytes <= 0 {
		t.Errorf("Capacity = %+v; the Engine says name %q, %d CPUs, %d bytes", h, info.Name, info.NCPU, info.MemTotal)
	}
	if _, err := exec.LookPath("docker"); err != nil {
		t.Log("no docker CLI; compared with the Engine's info only")
		return
	}
	cmd := exec.CommandContext(ctx, "docker", "info", "--format", "{{json .}}")
	cmd.Env = append(os.Environ(), "DOCKER_HOST="+dockertest.Host())
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("docker info: %v", err)
	}
	var cli struct {
		Name     string
		NCPU     int
		MemTotal int64
	}
	if err := json.Unmarshal(out, &cli); err != nil {
		t.Fatalf("docker info: %v: %s", err, out)
	}
	if h.Name != cli.Name || h.MilliCPU != int64(cli.NCPU)*1000 || h.MemoryBytes != cli.MemTotal {
		t.Errorf("Capacity = %+v; docker info says %+v", h, cli)
	}
}

func TestCapacityEngineUnreachable(t *testing.T) {
	p, err := New(&spec.Provider{Type: Type, Name: "gone", Docker: &spec.DockerSettings{
		Host: "unix:///nonexistent/docker.sock", PullPolicy: "missing", PublishAddress: "127.0.0.1", RestartPolicy: "unless-stopped",
	}}, providers.Env{ManagedBy: "test"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Capacity(context.Background())
	if err == nil || !strings.Contains(err.Error(), "capacity of docker.gone: the Docker Engine at unix:///nonexistent/docker.sock is not reachable") {
		t.Fatalf("Capacity with no engine: %v", err)
	}
}
