package versions

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/tendhq/tend/providers/docker/dockertest"
	"github.com/tendhq/tend/spec"
)

// BenchmarkLockRegistry locks 1,000 servers (50 with -short) whose images
// lie in 100 repositories (5) of the real registry on loopback, each with
// 100 tags (20), 1.0.0 to 1.9.9: every iteration lists each repository once
// (a Resolver per iteration) and asks the manifest digest of each server's
// release. Each server has "~> 1.M.0", M its index modulo the minors.
func BenchmarkLockRegistry(b *testing.B) {
	repos, tags, servers := 100, 100, 1000
	if testing.Short() {
		repos, tags, servers = 5, 20, 50
	}
	addr := dockertest.Registry(b)
	img, err := random.Image(128, 1)
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, repos)
	sem := make(chan struct{}, 8)
	for r := 0; r < repos; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			for t := 0; t < tags; t++ {
				tag, err := name.NewTag(fmt.Sprintf("%s/mcp/r%d:1.%d.%d", addr, r, t/10, t%10))
				switch {
				case err != nil:
				case t == 0:
					err = remote.Write(tag, img)
				default:
					err = remote.Tag(tag, img) // the manifest alone: its blobs are there
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
	b.Logf("pushed %d repositories of %d tags in %s", repos, tags, time.Since(start).Round(time.Millisecond))

	cfg := &spec.Config{Servers: map[string]*spec.Server{}}
	for i := 0; i < servers; i++ {
		text := fmt.Sprintf("~> 1.%d.0", i%(tags/10))
		c, _ := spec.ParseConstraint(text)
		n := fmt.Sprintf("s%04d", i)
		cfg.Servers[n] = &spec.Server{Name: n, VersionConstraint: text, Constraint: c,
			Release: &spec.Release{Kind: spec.ReleaseRegistry, Location: fmt.Sprintf("%s/mcp/r%d", addr, i%repos)}}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		lk, _, diags := Lock(context.Background(), &Resolver{}, LockRequest{Config: cfg})
		if diags.HasErrors() {
			b.Fatal(diags)
		}
		if got, want := lk.Servers["s0013"], fmt.Sprintf("1.%d.9", 13%(tags/10)); got == nil || got.Version != want {
			b.Fatalf("s0013 locked at %+v, want %s", got, want)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/lock")
	b.ReportMetric(float64(servers), "servers")
}
