package main

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/rogpeppe/go-internal/testscript"

	"github.com/tendhq/tend/providers"
	"github.com/tendhq/tend/providers/docker/dockertest"
)

// TestDockerAutoscale runs testdata/docker/*.txtar on a real Docker Engine:
// tend run autoscales containers of mcp-notes under real HTTP load. Like
// the other docker tests it skips without an engine, and fails then with
// TEND_REQUIRE_DOCKER=1.
func TestDockerAutoscale(t *testing.T) {
	cli := dockertest.Engine(t)
	const image = "tend-e2e/notes-load:1.0.0"
	dockertest.Image(t, cli, image, dockertest.Build{Version: "1.0.0"})
	managedBy := "e2e-autoscale-" + strconv.Itoa(os.Getpid())
	// Every container the scripts' tend made goes, pass or fail.
	t.Cleanup(func() { dockertest.Cleanup(t, cli, managedBy) })

	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/docker",
		RequireExplicitExec: true,
		Setup: func(env *testscript.Env) error {
			for _, k := range []string{"TEND_ENV", "TEND_SECRETS_DIR", "NO_COLOR"} {
				env.Setenv(k, "")
			}
			env.Setenv("TEND_MANAGED_BY", managedBy)
			env.Setenv("TEND_STATE_DIR", filepath.Join(env.WorkDir, ".state"))
			env.Setenv("DOCKER_HOST", dockertest.Host())
			env.Setenv("IMAGE", image)
			port := dockertest.FreePorts(t, 4)
			env.Setenv("PORT_BASE", strconv.Itoa(port))
			env.Setenv("PORT_BASE_3", strconv.Itoa(port+3))
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"load":     cmdLoad,
			"wait-for": cmdWaitFor,
			// containers N: exactly N containers (running or not) carry
			// this test's managed-by label.
			"containers": func(ts *testscript.TestScript, neg bool, args []string) {
				want, err := strconv.Atoi(args[0])
				ts.Check(err)
				list, err := cli.ContainerList(context.Background(), container.ListOptions{All: true,
					Filters: filters.NewArgs(filters.Arg("label", providers.LabelManagedBy+"="+managedBy))})
				ts.Check(err)
				if (len(list) == want) == neg {
					ts.Fatalf("%d containers of %s, want %d", len(list), managedBy, want)
				}
			},
			// hold DURATION: let time pass (an observation window, not a
			// wait for a condition).
			"hold": func(ts *testscript.TestScript, neg bool, args []string) {
				d, err := time.ParseDuration(args[0])
				ts.Check(err)
				time.Sleep(d)
			},
		},
	})
}
