package docker

import (
	"context"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"

	"github.com/tendhq/tend/providers"
	"github.com/tendhq/tend/providers/docker/dockertest"
	"github.com/tendhq/tend/providers/providertest"
	"github.com/tendhq/tend/spec"
)

const conformanceImage = "tend-test/conformance"

// newTestProvider returns a provider on the test engine, owned by a
// managed-by unique to the test, whose containers and volumes are removed
// when the test ends.
func newTestProvider(t *testing.T, network string) (*Provider, string) {
	t.Helper()
	cli := dockertest.Engine(t)
	managedBy := "test-" + dockertest.Key(t.Name()) + "-" + strconv.Itoa(os.Getpid())
	p, err := New(&spec.Provider{Type: Type, Name: "test", Docker: &spec.DockerSettings{
		Host: dockertest.Host(), PullPolicy: "never", PublishAddress: "127.0.0.1",
		RestartPolicy: "unless-stopped", StopTimeout: 2 * time.Second, Network: network,
	}}, providers.Env{ManagedBy: managedBy})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		dockertest.Cleanup(t, cli, managedBy)
		p.Close()
	})
	return p, managedBy
}

// TestConformance runs the provider conformance suite against the real
// engine, with images of mcp-notes.
func TestConformance(t *testing.T) {
	p, managedBy := newTestProvider(t, "")
	cli := p.Client()
	for _, v := range []string{"1.0.0", "2.0.0"} {
		dockertest.Image(t, cli, conformanceImage+":"+v, dockertest.Build{Version: v})
	}
	ports := map[string]int{}
	server := func(name, version string, replicas int) *spec.Server {
		base, ok := ports[name]
		if !ok {
			base = dockertest.FreePorts(t, 6)
			ports[name] = base
		}
		return &spec.Server{
			Name:     name,
			Provider: "docker.test",
			Version:  version,
			Image:    conformanceImage + ":" + version,
			Replicas: replicas,
			Ports:    []spec.Port{{Name: "http", Number: base, Protocol: "tcp"}},
			Env:      map[string]spec.Value{"MODE": spec.Plain("conformance")},
			ConfigFiles: []*spec.ConfigFile{
				{Path: "/etc/notes/config.yaml", Content: spec.Plain("max_notes: 100\n"), Mode: 0o644},
			},
		}
	}
	providertest.Run(t, providertest.Harness{
		Provider:  p,
		ManagedBy: managedBy,
		Server:    server,
		// Tamper changes the restart policy, as docker update --restart does.
		Tamper: func(t *testing.T, inst providers.Instance) {
			t.Helper()
			_, err := cli.ContainerUpdate(context.Background(), inst.ID, container.UpdateConfig{
				RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyAlways},
			})
			if err != nil {
				t.Fatal(err)
			}
		},
		// Kill SIGKILLs the container's process from the host, as a crash
		// would end it; the Engine restarts it (unless-stopped).
		Kill: func(t *testing.T, inst providers.Instance) {
			t.Helper()
			c, err := cli.ContainerInspect(context.Background(), inst.ID)
			if err != nil {
				t.Fatal(err)
			}
			if c.State == nil || c.State.Pid <= 0 {
				t.Fatalf("%s replica %d has no process to kill (%+v)", inst.Server, inst.Replica, c.State)
			}
			if err := syscall.Kill(c.State.Pid, syscall.SIGKILL); err != nil {
				t.Fatalf("kill pid %d of %s replica %d: %v", c.State.Pid, inst.Server, inst.Replica, err)
			}
		},
		// Foreign is a running container without tend's labels.
		Foreign: func(t *testing.T) (func() bool, func()) {
			t.Helper()
			ctx := context.Background()
			name := "foreign-" + managedBy
			c, err := cli.ContainerCreate(ctx, &container.Config{Image: conformanceImage + ":1.0.0",
				Labels: map[string]string{"owner": "someone-else"}}, nil, nil, nil, name)
			if err != nil {
				t.Fatal(err)
			}
			if err := cli.ContainerStart(ctx, c.ID, container.StartOptions{}); err != nil {
				t.Fatal(err)
			}
			alive := func() bool {
				in, err := cli.ContainerInspect(ctx, c.ID)
				return err == nil && in.State != nil && in.State.Running
			}
			cleanup := func() { cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true}) }
			return alive, cleanup
		},
		Timeout: 30 * time.Second,
		// CopyIn extracts over the volume's content: the Engine API
		// cannot delete files in it (see the package documentation).
		CopyInMerges: true,
	})
}
