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

	"github.com/tendhq/tend/providers"
	"github.com/tendhq/tend/providers/docker/dockertest"
)

// TestDockerReload: on a real Docker Engine, a change of config files only
// reloads each container with SIGHUP (docker kill --signal): the same
// containers run on, and mcp-notes counts the reload; a config that breaks
// the server's checks falls back to a rolling restart, which fails too, and the last
// verified revision comes back, in new containers. tend logs reads the
// containers' output (--since, --tail, one replica or both).
func TestDockerReload(t *testing.T) {
	cli := dockertest.Engine(t)
	const image = "tend-e2e/notes-reload:1.0.0"
	dockertest.Image(t, cli, image, dockertest.Build{Version: "1.0.0"})
	managedBy := "e2e-reload-" + strconv.Itoa(os.Getpid())
	t.Cleanup(func() { dockertest.Cleanup(t, cli, managedBy) })
	port := dockertest.FreePorts(t, 2)
	stateDir, repo := t.TempDir(), t.TempDir()
	hcl := `
provider "docker" "local" {
  stop_timeout = "2s"
}

variable "limit" {
  default = 0
}

variable "workers" {
  default = 4
}

server "notes" {
  provider = provider.docker.local
  version  = "1.0.0"
  image    = "` + image + `"
  args     = ["--config", "/etc/notes/notes.yaml"]
  replicas = 2
  port     = ` + strconv.Itoa(port) + `
  config_file "/etc/notes/notes.yaml" {
    content = "workers: ${var.workers}\nrate_limiting:\n  enabled: ${var.limit > 0}\n  max_requests: ${max(var.limit, 1)}\n  window: 60\n"
  }
  reload {
    signal = "HUP"
  }
  check "health" {
    http {
      path       = "/health"
      body_regex = "\"rate_limiting\":\"(off|5 requests per 60s per client IP)\""
    }
    interval = "300ms"
    timeout  = "300ms"
  }
  rollout {
    verify_for        = "2s"
    progress_deadline = "30s"
  }
}
`
	if err := os.WriteFile(filepath.Join(repo, "main.hcl"), []byte(hcl), 0o644); err != nil {
		t.Fatal(err)
	}
	tend := func(wantCode int, args ...string) string {
		t.Helper()
		var out bytes.Buffer
		args = append(append(args, "--state-dir", stateDir, "--managed-by", managedBy), repo)
		if code := run(args, &out, &out); code != wantCode {
			t.Fatalf("tend %s: exit %d, want %d\n%s", strings.Join(args, " "), code, wantCode, out.String())
		}
		return out.String()
	}
	containers := func() map[int]string {
		t.Helper()
		list, err := cli.ContainerList(context.Background(), container.ListOptions{All: true,
			Filters: filters.NewArgs(filters.Arg("label", providers.LabelManagedBy+"="+managedBy))})
		if err != nil {
			t.Fatal(err)
		}
		out := map[int]string{}
		for _, c := range list {
			r, _ := strconv.Atoi(c.Labels[providers.LabelReplica])
			out[r] = c.ID
		}
		return out
	}
	health := func(replica int, want string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/health", port+replica))
			var body []byte
			if err == nil {
				body, _ = io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode == 200 && strings.Contains(string(body), want) {
					return
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("replica %d /health: %v %s, want %s", replica, err, body, want)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	tend(0, "apply")
	before := containers()
	if len(before) != 2 {
		t.Fatalf("%d containers after the first apply, want 2", len(before))
	}
	health(0, `"reloads":0`)

	if out := tend(2, "plan", "-detailed-exitcode", "--var", "limit=5"); !strings.Contains(out, "reload 1.0.0, 2 of 2 replicas, one at a time (no restart)") {
		t.Fatalf("the plan of a config change does not say reload:\n%s", out)
	}
	out := tend(0, "apply", "--var", "limit=5")
	for _, want := range []string{"reloading replica 0 (SIGHUP)", "reloading replica 1 (SIGHUP)", "Apply complete: 1 verified"} {
		if !strings.Contains(out, want) {
			t.Errorf("the reload does not say %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "fell back") || strings.Contains(out, "rolling: replicas") {
		t.Errorf("the reload restarted replicas:\n%s", out)
	}
	if after := containers(); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("the reload replaced containers: %v, before %v", after, before)
	}
	for r := range 2 {
		health(r, `"reloads":1`)
		health(r, `"rate_limiting":"5 requests per 60s per client IP"`)
	}
	if out := tend(0, "plan", "-detailed-exitcode", "--var", "limit=5"); !strings.Contains(out, "No changes") {
		t.Fatalf("after the reload, the plan is not empty (the containers do not report the new spec):\n%s", out)
	}

	// tend logs through the Engine's container logs: --since, --tail, headers.
	logs := tend(0, "logs", "notes", "--replica", "0", "--since", "10m", "--tail", "0")
	if !strings.Contains(logs, "mcp-notes starting") || !strings.Contains(logs, "config reloaded") || strings.Contains(logs, "==>") {
		t.Errorf("tend logs --replica 0 --since 10m:\n%s", logs)
	}
	if logs := tend(0, "logs", "notes", "--since", time.Now().Add(time.Hour).UTC().Format(time.RFC3339)); strings.Contains(logs, "mcp-notes") {
		t.Errorf("tend logs --since an hour ahead shows lines:\n%s", logs)
	}
	if logs := tend(0, "logs", "notes", "--tail", "1"); !strings.Contains(logs, "==> replica 0 <==") || !strings.Contains(logs, "==> replica 1 <==") {
		t.Errorf("tend logs of two replicas:\n%s", logs)
	}

	// A config the checks refuse (mcp-notes takes it, the body_regex does
	// not): fallback, failure, rollback. (A config mcp-notes refuses at
	// start is the process and systemd tests' case: here its containers
	// would crash-loop, which races the provider's rename of a new
	// container.)
	out = tend(1, "apply", "--var", "limit=9")
	for _, want := range []string{"replica 0 failed its checks after the reload", "fell back to a rolling restart, which failed", "rolled back to revision", "Apply complete: 0 verified, 1 rolled back"} {
		if !strings.Contains(out, want) {
			t.Errorf("the broken reload does not say %q:\n%s", want, out)
		}
	}
	after := containers()
	if after[0] == before[0] {
		t.Errorf("replica 0 was not restarted after the failed reload")
	}
	for r := range 2 {
		health(r, `"rate_limiting":"5 requests per 60s per client IP"`)
	}
	if out := tend(0, "plan", "-detailed-exitcode", "--var", "limit=5"); !strings.Contains(out, "No changes") {
		t.Fatalf("after the rollback, the plan for the verified revision is not empty:\n%s", out)
	}
}
