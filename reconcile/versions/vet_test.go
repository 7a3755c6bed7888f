package versions

import (
	"context"
	"strings"
	"testing"

	"github.com/tendhq/tend/providers/docker/dockertest"
	"github.com/tendhq/tend/spec"
)

// TestVetRegistry: a plan deploys the locked manifest (the image is
// pinned to the locked digest), and a tag pushed again in the real
// registry is refused at the version attribute with both digests; a
// server the plan does not deploy is not asked about.
func TestVetRegistry(t *testing.T) {
	addr := dockertest.Registry(t)
	repo := addr + "/mcp/search"
	first := pushRandom(t, repo+":1.5.0")
	pushRandom(t, repo+":1.4.0")
	src := `provider "docker" "local" {}
server "search" {
  version = "~> 1.4"
  image   = "` + repo + `:${version}"
}
server "idle" {
  version = "~> 1.0"
  image   = "127.0.0.1:1/nowhere/idle:${version}"
}
`
	files := map[string][]byte{"main.hcl": []byte(src)}
	unlocked, diags := spec.NewLoader(spec.Options{Unlocked: true}).LoadFiles("r", files)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	delete(unlocked.Servers, "idle")
	lk, _, diags := Lock(context.Background(), &Resolver{}, LockRequest{Config: unlocked})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	lk.Servers["idle"] = &spec.LockedServer{Name: "idle", Constraint: "~> 1.0", Version: "1.0.0", Digest: "sha256:" + strings.Repeat("0", 64), Source: "registry:127.0.0.1:1/nowhere/idle"}
	files[spec.LockFileName] = lk.Bytes()
	cfg, diags := spec.NewLoader(spec.Options{}).LoadFiles("r", files)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if want := repo + ":1.5.0@" + first; cfg.Servers["search"].Image != want {
		t.Fatalf("image %q, want %q", cfg.Servers["search"].Image, want)
	}
	if d := Vet(context.Background(), VetInput{Config: cfg, Servers: []string{"search"}}); len(d) > 0 {
		t.Fatalf("a fresh lock: %v", d)
	}
	again := pushRandom(t, repo+":1.5.0")
	d := Vet(context.Background(), VetInput{Config: cfg, Servers: []string{"search"}})
	if len(d) != 1 || d[0].Summary != "Locked digest mismatch" || d[0].Subject.Start.Line != 3 ||
		!strings.Contains(d[0].Detail, `Server "search" would deploy 1.5.0`) || !strings.Contains(d[0].Detail, "records "+first) || !strings.Contains(d[0].Detail, "now gives "+again) {
		t.Fatalf("after 1.5.0 was pushed again: %v", d)
	}
	// idle's registry does not exist: a plan that leaves idle alone does
	// not find out, one that deploys it cannot verify it and refuses.
	if d := Vet(context.Background(), VetInput{Config: cfg, Servers: nil}); len(d) > 0 {
		t.Fatalf("nothing deployed: %v", d)
	}
	d = Vet(context.Background(), VetInput{Config: cfg, Servers: []string{"idle"}})
	if len(d) != 1 || d[0].Summary != "Cannot verify the locked release" || !d.HasErrors() {
		t.Fatalf("idle deployed: %v", d)
	}
}
