package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"

	"github.com/tendhq/tend/providers"
	"github.com/tendhq/tend/providers/docker/dockertest"
)

// The stand-in of the search server's own binary: its migrate hook
// (/app/search migrate) succeeds, anything else runs mcp-notes.
const searchScript = `#!/bin/sh
if [ "$1" = migrate ]; then
  test -n "$DATABASE_URL" || { echo "DATABASE_URL is not set" >&2; exit 1; }
  echo "migrated (stand-in)"
  exit 0
fi
exec /mcp-notes --host 0.0.0.0 "$@"
`

// syncBuffer is a buffer written by an apply and read by the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestDockerFleet deploys the docker servers of examples/mcp-fleet
// (production) on a real Docker Engine, with images of mcp-notes standing in
// for the example's images: create, upgrade, a bad release rolled back and
// held, and a rolling update interrupted by a restart of dockerd that the
// next apply finishes.
func TestDockerFleet(t *testing.T) {
	cli := dockertest.Engine(t)
	const registry = "tend-e2e/mcp"
	const postgres = "tend-e2e/postgres:16.4"
	search := func(version, fault string) {
		dockertest.Image(t, cli, registry+"/search:"+version, dockertest.Build{
			Version: version, Fault: fault, Toolset: "search", Files: map[string]string{"/app/search": searchScript},
		})
	}
	search("1.4.2", "")
	search("1.5.0", "")
	search("1.5.1", "")
	search("1.6.0", "crash")
	dockertest.Image(t, cli, registry+"/search-index:3.2.0", dockertest.Build{Version: "3.2.0"})
	dockertest.Image(t, cli, postgres, dockertest.Build{Version: "16.4.0"})

	managedBy := "e2e-" + strconv.Itoa(os.Getpid())
	t.Cleanup(func() {
		dockertest.Cleanup(t, cli, managedBy)
		// The example's network, when this test's tend made it.
		ctx := context.Background()
		nets, err := cli.NetworkList(ctx, network.ListOptions{Filters: filters.NewArgs(filters.Arg("label", providers.LabelManagedBy+"="+managedBy))})
		if err == nil {
			for _, n := range nets {
				cli.NetworkRemove(ctx, n.ID)
			}
		}
	})
	t.Setenv("TEND_SECRET_POSTGRES_PASSWORD", "pg-s3cret-e2e")
	t.Setenv("TEND_SECRET_OPS_NOTIFY_TOKEN", "ops-s3cret-e2e")
	// Every secret of the repository must be set for an apply, targeted or not.
	t.Setenv("TEND_SECRET_NOTES_API_TOKEN", "notes-s3cret-e2e")
	t.Setenv("TEND_SECRET_BACKUP_KEY", "backup-s3cret-e2e")
	t.Setenv("TEND_SECRET_BACKUP_S3_SECRET", "backup-s3-s3cret-e2e")
	t.Setenv("TEND_SECRET_STAGING_API_TOKEN", "staging-s3cret-e2e")
	stateDir := t.TempDir()

	// The example's change windows (business hours for the data tier, a
	// year-end freeze) are not what this test is about: it runs at any
	// hour of the year. Nor is its promotion rule (production takes what
	// staging verified): there is no staging here.
	tend := func(out io.Writer, searchVersion string, cmd ...string) int {
		args := append(cmd, "-ignore-windows", "--state-dir", stateDir, "--managed-by", managedBy, "--env", "production",
			"--var", "promotion_environments=[]",
			"--var", "registry="+registry, "--var", "postgres_image="+postgres,
			"--var", "search_version="+searchVersion, "-target", "search", "../../examples/mcp-fleet")
		return run(args, out, out)
	}
	apply := func(searchVersion string, wantCode int, wants ...string) string {
		t.Helper()
		var out bytes.Buffer
		code := tend(&out, searchVersion, "apply")
		s := out.String()
		if code != wantCode {
			t.Fatalf("tend apply (search %s): exit %d, want %d\n%s", searchVersion, code, wantCode, s)
		}
		for _, w := range wants {
			if !strings.Contains(s, w) {
				t.Errorf("tend apply (search %s) does not say %q:\n%s", searchVersion, w, s)
			}
		}
		if strings.Contains(s, "s3cret") {
			t.Errorf("tend apply shows a secret:\n%s", s)
		}
		return s
	}
	health := func(port int, version string) {
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
				t.Fatalf("127.0.0.1:%d/health: %v %s, want version %s", port, err, body, version)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	searchAt := func(version string) {
		t.Helper()
		for i := range 4 { // production runs 4 replicas on 8000..8003
			health(8000+i, version)
		}
	}
	noChanges := func(searchVersion string) {
		t.Helper()
		var out bytes.Buffer
		if code := tend(&out, searchVersion, "plan", "-detailed-exitcode"); code != 0 || !strings.Contains(out.String(), "No changes") {
			t.Fatalf("tend plan after the apply: exit %d\n%s", code, out.String())
		}
	}

	// Create: postgres and search-index first, then search (4 replicas,
	// its migrate hook, its health and MCP checks).
	var plan bytes.Buffer
	if code := tend(&plan, "1.4.2", "plan"); code != 0 || !strings.Contains(plan.String(), "Targeted plan: only postgres, search, search-index") {
		t.Fatalf("targeted plan: exit %d\n%s", code, plan.String())
	}
	apply("1.4.2", 0, "running the migrate hook", "Apply complete: 3 verified")
	searchAt("1.4.2")
	health(7700, "3.2.0")
	noChanges("1.4.2")

	// A compatible upgrade, rolled replica by replica.
	apply("1.5.0", 0, "rolling update 1.4.2 → 1.5.0, 4 replicas", "rolling: replicas 3 of 4", "Apply complete: 1 verified")
	searchAt("1.5.0")

	// A release that crashes: rolled back by itself, and held.
	apply("1.6.0", 1, "rolling back to revision", "Apply complete: 0 verified, 1 rolled back")
	searchAt("1.5.0")
	plan.Reset()
	tend(&plan, "1.6.0", "plan")
	if !strings.Contains(plan.String(), "held") {
		t.Fatalf("plan of the held release:\n%s", plan.String())
	}

	// dockerd restarts in the middle of a rolling update. That stops every
	// container on the engine, so it is done only when asked
	// (TEND_DOCKERD_RESTART=1: make test runs this test alone, after the
	// others).
	if os.Getenv("TEND_DOCKERD_RESTART") != "1" {
		t.Skip("the dockerd restart runs only with TEND_DOCKERD_RESTART=1 (make test sets it, running this test alone)")
	}
	restart := exec.Command("../../hack/docker-engine.sh", "restart")
	if st, err := os.Stat("/run/tend-dockerd.pid"); err != nil || st.Size() == 0 {
		msg := "the running dockerd was not started by hack/docker-engine.sh, so this test does not restart it"
		if dockertest.Required() {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	var out syncBuffer
	done := make(chan int, 1)
	go func() { done <- tend(&out, "1.5.1", "apply") }()
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(out.String(), "rolling: replicas 1 of 4") {
		if time.Now().After(deadline) {
			t.Fatalf("the rolling update to 1.5.1 did not reach replica 1:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if b, err := restart.CombinedOutput(); err != nil {
		t.Fatalf("restart dockerd: %v\n%s", err, b)
	}
	var code int
	select {
	case code = <-done:
	case <-time.After(3 * time.Minute):
		t.Fatalf("the interrupted apply did not end:\n%s", out.String())
	}
	t.Logf("the apply interrupted by the dockerd restart ended with %d:\n%s", code, out.String())
	if code == 0 {
		t.Fatalf("the apply went on as if dockerd had not restarted:\n%s", out.String())
	}
	// The next apply finishes the rollout; nothing is held.
	apply("1.5.1", 0, "Apply complete: 1 verified")
	searchAt("1.5.1")
	noChanges("1.5.1")
}
