package docker

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/tendhq/tend/providers"
	"github.com/tendhq/tend/providers/docker/dockertest"
	"github.com/tendhq/tend/spec"
)

// BenchmarkObserve measures one Observe of a server of 10 running
// containers, each with a config file: one list call, then an inspect and
// a stat of the config file per container.
func BenchmarkObserve(b *testing.B) {
	cli := dockertest.Engine(b)
	managedBy := "bench-" + strconv.Itoa(os.Getpid())
	p, err := New(&spec.Provider{Type: Type, Name: "bench", Docker: &spec.DockerSettings{
		Host: dockertest.Host(), PullPolicy: "never", PublishAddress: "127.0.0.1",
		RestartPolicy: "unless-stopped", StopTimeout: time.Second,
	}}, providers.Env{ManagedBy: managedBy})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { dockertest.Cleanup(b, cli, managedBy); p.Close() })
	dockertest.Image(b, cli, testImage+":1.0.0", dockertest.Build{Version: "1.0.0"})
	const n = 10
	s := &spec.Server{
		Name: "bench", Version: "1.0.0", Image: testImage + ":1.0.0", Replicas: n,
		Ports:       []spec.Port{{Name: "http", Number: dockertest.FreePorts(b, n), Protocol: "tcp"}},
		ConfigFiles: []*spec.ConfigFile{{Path: "/etc/bench.yaml", Content: spec.Plain("a: 1\n"), Mode: 0o644}},
	}
	d := &providers.Desired{Server: s, SpecHash: spec.RuntimeHash(s.Fields()), Revision: "bench", ManagedBy: managedBy}
	ctx := context.Background()
	for i := range n {
		if r := p.StartReplica(ctx, providers.StartRequest{Desired: d, Replica: i}); r.Err != nil {
			b.Fatal(r.Err)
		}
	}
	b.ResetTimer()
	for b.Loop() {
		res := p.Observe(ctx, providers.ObserveRequest{ManagedBy: managedBy})
		if res.Err != nil || len(res.Instances) != n {
			b.Fatalf("observe: %d instances, %v", len(res.Instances), res.Err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/n, "µs/container")
}
