package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"

	"github.com/tendhq/tend/providers"
	"github.com/tendhq/tend/providers/docker/dockertest"
)

// TestDockerLockedDigest: a server locked to a tag's manifest runs that
// manifest on a real Docker Engine, pulled from a real registry on
// loopback, even after the tag was pushed again with another image: a
// container removed by hand comes back on the locked image, and a change
// that would deploy the moved tag is refused by the plan, naming both
// digests, until tend lock -upgrade takes the new one.
func TestDockerLockedDigest(t *testing.T) {
	cli := dockertest.Engine(t)
	addr := dockertest.Registry(t)
	repo := addr + "/tend-e2e/locked-notes"
	ref := repo + ":1.0.0"
	dockertest.Image(t, cli, ref, dockertest.Build{Version: "1.0.0"})
	first := dockertest.Push(t, cli, ref)
	ctx := context.Background()
	t.Cleanup(func() {
		for _, r := range []string{ref, repo + "@" + first} {
			cli.ImageRemove(ctx, r, image.RemoveOptions{Force: true})
		}
	})

	port := dockertest.FreePorts(t, 1)
	managedBy := "e2e-locked-" + strconv.Itoa(os.Getpid())
	t.Cleanup(func() { dockertest.Cleanup(t, cli, managedBy) })
	stateDir, dir := t.TempDir(), t.TempDir()
	writeRepo := func(mode string) {
		t.Helper()
		hcl := fmt.Sprintf(`provider "docker" "local" {}

server "notes" {
  version  = "~> 1.0"
  image    = "%s:${version}"
  port     = %d
  env      = { MODE = "%s" }
  check "health" {
    http {
      path = "/health"
    }
    interval = "200ms"
    timeout  = "200ms"
  }
  rollout {
    verify_for = "1s"
  }
}
`, repo, port, mode)
		if err := os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(hcl), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tend := func(wantCode int, args ...string) string {
		t.Helper()
		var out bytes.Buffer
		if args[0] == "lock" {
			args = append(args, "--dir", dir)
		} else {
			args = append(args, "--state-dir", stateDir, "--managed-by", managedBy, dir)
		}
		if code := run(args, &out, &out); code != wantCode {
			t.Fatalf("tend %s: exit %d, want %d\n%s", strings.Join(args, " "), code, wantCode, out.String())
		}
		return out.String()
	}
	health := func(version string) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/health", port))
			var body []byte
			if err == nil {
				body, _ = io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode == 200 && strings.Contains(string(body), `"version":"`+version+`"`) {
					return
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("health: %v %s, want version %s", err, body, version)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	containers := func() []container.Summary {
		t.Helper()
		cs, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", providers.LabelManagedBy+"="+managedBy))})
		if err != nil {
			t.Fatal(err)
		}
		return cs
	}

	writeRepo("a")
	tend(0, "lock")
	if out := tend(0, "apply"); !strings.Contains(out, "Apply complete: 1 verified") {
		t.Fatalf("apply:\n%s", out)
	}
	health("1.0.0")
	cs := containers()
	if len(cs) != 1 || cs[0].Image != ref+"@"+first {
		t.Fatalf("containers %+v, want one of %s@%s", cs, ref, first)
	}

	// The tag moves: another image pushed as 1.0.0 (here and in the
	// registry). Nothing to deploy: the plan asks nothing and says so.
	other := repo + "-build:moved" // Image builds a ref once per process
	dockertest.Image(t, cli, other, dockertest.Build{Version: "1.0.0-moved"})
	t.Cleanup(func() { cli.ImageRemove(ctx, other, image.RemoveOptions{Force: true}) })
	if err := cli.ImageTag(ctx, other, ref); err != nil {
		t.Fatal(err)
	}
	moved := dockertest.Push(t, cli, ref)
	if moved == first {
		t.Fatal("the second image has the first one's digest")
	}
	t.Cleanup(func() { cli.ImageRemove(ctx, repo+"@"+moved, image.RemoveOptions{Force: true}) })
	if out := tend(0, "plan", "-detailed-exitcode"); !strings.Contains(out, "No changes") {
		t.Fatalf("plan after the tag moved:\n%s", out)
	}

	// A container removed by hand is healed on the locked image, not on
	// what the tag now names.
	if err := cli.ContainerRemove(ctx, cs[0].ID, container.RemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	tend(0, "apply")
	health("1.0.0")

	// A change that deploys: refused at the version attribute.
	writeRepo("b")
	out := tend(1, "plan")
	for _, want := range []string{"Error: Locked digest mismatch", `in server "notes"`, first, moved, "lock -upgrade notes"} {
		if !strings.Contains(strings.ReplaceAll(out, "\n", " "), want) {
			t.Errorf("the refused plan does not say %q:\n%s", want, out)
		}
	}
	tend(1, "apply")
	if cs := containers(); len(cs) != 1 || cs[0].Image != ref+"@"+first {
		t.Fatalf("the refused apply changed the containers: %+v", cs)
	}

	// Reviewed and locked again: the new image rolls out.
	if out := tend(0, "lock", "-upgrade", "notes"); !strings.Contains(out, "notes: 1.0.0 -> 1.0.0 ("+moved+")") {
		t.Fatalf("lock -upgrade:\n%s", out)
	}
	tend(0, "apply")
	health("1.0.0-moved")
	for _, c := range containers() {
		if c.Image != ref+"@"+moved {
			t.Fatalf("container %s runs %s, want %s@%s", c.ID[:12], c.Image, ref, moved)
		}
	}
}
