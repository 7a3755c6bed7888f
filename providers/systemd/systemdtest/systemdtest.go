// Package systemdtest runs the systemd provider's tests against a real
// systemd: systemd as PID 1 in a Docker container (the image of
// hack/systemd-image.sh), with the package's test binary run inside, so that
// PIDs, /proc, unit paths and the bus address are as on a systemd host.
//
// A package's host-side test calls RunTests; the tests that need systemd
// call Inside and skip outside the container. Without a Docker Engine, or
// when the image cannot be built, RunTests skips, or fails when
// TEND_REQUIRE_SYSTEMD=1.
package systemdtest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"
)

// InsideEnv is set to 1 in the test binary run inside the container.
const InsideEnv = "TEND_SYSTEMD_INSIDE"

// NotesDirEnv names the directory, inside the container, of the mcp-notes
// releases RunTests builds: mcp-notes-1.0.0, mcp-notes-1.1.0 and
// mcp-notes-1.2.0 (which crashes at start).
const NotesDirEnv = "TEND_MCP_NOTES_DIR"

// Inside reports whether this process is the test binary RunTests runs in
// the systemd container.
func Inside() bool { return os.Getenv(InsideEnv) == "1" }

// Required reports whether the systemd tests must run (TEND_REQUIRE_SYSTEMD=1).
func Required() bool { return os.Getenv("TEND_REQUIRE_SYSTEMD") == "1" }

// SkipUnlessInside skips a test that needs a real systemd when it is not
// run inside the container.
func SkipUnlessInside(t testing.TB) {
	t.Helper()
	if !Inside() {
		t.Skipf("needs systemd: runs inside the systemd container (%s=1), started by the package's host-side test through RunTests", InsideEnv)
	}
}

func unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if Required() {
		t.Fatal(msg)
	}
	t.Skip(msg + " (set TEND_REQUIRE_SYSTEMD=1 to make this an error)")
}

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

func engine(t testing.TB) *client.Client {
	t.Helper()
	host := os.Getenv("DOCKER_HOST")
	if host == "" {
		host = "unix:///var/run/docker.sock"
	}
	cli, err := client.NewClientWithOpts(client.WithHost(host), client.WithAPIVersionNegotiation())
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err = cli.Ping(ctx)
	}
	if err != nil {
		unavailable(t, "no Docker Engine answers at %s to run systemd in (make test starts one): %v", host, err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// Image builds the systemd image when missing and returns its tag.
func Image(t testing.TB) string {
	t.Helper()
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd := exec.Command(filepath.Join(root, "hack", "systemd-image.sh"))
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		unavailable(t, "hack/systemd-image.sh could not build the systemd image: %v\n%s", err, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

// Container is a running container with systemd as PID 1.
type Container struct {
	ID  string
	cli *client.Client
}

// Start starts a systemd container from the image with dir mounted
// read-only at /tend, waits until systemd runs, and removes it when the
// test ends.
func Start(t testing.TB, dir string) *Container {
	t.Helper()
	cli := engine(t)
	img := Image(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tmpfs := map[string]string{"/run": "", "/run/lock": "", "/tmp": "exec"}
	created, err := cli.ContainerCreate(ctx, &container.Config{
		Image: img, StopSignal: "SIGRTMIN+3",
		Labels: map[string]string{"tend.dev/test": "systemd"},
	}, &container.HostConfig{
		CgroupnsMode: container.CgroupnsModePrivate,
		CapAdd:       []string{"ALL"},
		CapDrop:      []string{"SYS_RESOURCE"},
		SecurityOpt:  []string{"seccomp=unconfined", "apparmor=unconfined"},
		Tmpfs:        tmpfs,
		Mounts:       []mount.Mount{{Type: mount.TypeBind, Source: dir, Target: "/tend", ReadOnly: true}},
	}, nil, nil, "")
	if err != nil {
		t.Fatalf("create the systemd container: %v", err)
	}
	c := &Container{ID: created.ID, cli: cli}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cli.ContainerRemove(ctx, created.ID, container.RemoveOptions{Force: true})
	})
	if err := cli.ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
		t.Fatalf("start the systemd container: %v", err)
	}
	// Until systemd has its bus, systemctl says "offline"; then --wait
	// waits for the boot to end.
	var state string
	deadline := time.Now().Add(time.Minute)
	for {
		var out bytes.Buffer
		code, err := c.Exec(ctx, nil, []string{"systemctl", "is-system-running", "--wait"}, &out)
		state = strings.TrimSpace(out.String())
		if err == nil && (state == "running" || state == "degraded") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("systemd in the container did not come up within a minute: %s (exit %d, %v)\n%s", state, code, err, c.logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if state == "degraded" {
		var failed bytes.Buffer
		c.Exec(ctx, nil, []string{"systemctl", "--failed", "--no-pager"}, &failed)
		t.Logf("systemd runs degraded:\n%s", failed.String())
	}
	return c
}

func (c *Container) logs() string {
	rc, err := c.cli.ContainerLogs(context.Background(), c.ID, container.LogsOptions{ShowStdout: true, ShowStderr: true, Tail: "50"})
	if err != nil {
		return err.Error()
	}
	defer rc.Close()
	var b bytes.Buffer
	stdcopy.StdCopy(&b, &b, rc)
	return b.String()
}

// Exec runs argv in the container with env (KEY=VALUE), its output (stdout
// and stderr) into w, and returns its exit code.
func (c *Container) Exec(ctx context.Context, env, argv []string, w io.Writer) (int, error) {
	ex, err := c.cli.ContainerExecCreate(ctx, c.ID, container.ExecOptions{Cmd: argv, Env: env, AttachStdout: true, AttachStderr: true})
	if err != nil {
		return -1, err
	}
	att, err := c.cli.ContainerExecAttach(ctx, ex.ID, container.ExecAttachOptions{})
	if err != nil {
		return -1, err
	}
	defer att.Close()
	done := make(chan error, 1)
	go func() { _, err := stdcopy.StdCopy(w, w, att.Reader); done <- err }()
	select {
	case err := <-done:
		if err != nil && !errors.Is(err, io.EOF) {
			return -1, err
		}
	case <-ctx.Done():
		return -1, ctx.Err()
	}
	ins, err := c.cli.ContainerExecInspect(ctx, ex.ID)
	if err != nil {
		return -1, err
	}
	return ins.ExitCode, nil
}

// build runs go build (or go test -c) with CGO_ENABLED=0, so the binary
// runs in the container whatever its C library.
func build(t testing.TB, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// RunTests compiles the test binary of the package in the working
// directory, builds the mcp-notes releases, starts a systemd container and
// runs the binary there with -test.run run and InsideEnv=1. Its output goes
// to the test log; its failure fails t.
func RunTests(t *testing.T, run string) {
	t.Helper()
	if Inside() {
		t.Skip("already inside the systemd container")
	}
	engine(t) // skips (or fails) first when there is no engine
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	pkg, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	build(t, pkg, "test", "-c", "-o", filepath.Join(dir, "inside.test"), ".")
	notes := filepath.Join(dir, "notes")
	for _, b := range []struct{ version, fault string }{{"1.0.0", ""}, {"1.1.0", ""}, {"1.2.0", "crash"}} {
		ld := "-X main.version=" + b.version
		if b.fault != "" {
			ld += " -X main.fault=" + b.fault
		}
		build(t, root, "build", "-trimpath", "-ldflags", ld, "-o", filepath.Join(notes, "mcp-notes-"+b.version), "./examples/mcp-notes")
	}
	c := Start(t, dir)

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	pr, pw := io.Pipe()
	lines := make(chan struct{})
	var all bytes.Buffer
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			t.Log(sc.Text())
			all.WriteString(sc.Text() + "\n")
		}
	}()
	argv := []string{"/tend/inside.test", "-test.v", "-test.count=1", "-test.timeout=14m", "-test.run", run}
	env := []string{InsideEnv + "=1", NotesDirEnv + "=/tend/notes", "TEND_REQUIRE_SYSTEMD=" + os.Getenv("TEND_REQUIRE_SYSTEMD")}
	code, err := c.Exec(ctx, env, argv, pw)
	pw.Close()
	<-lines
	if err != nil {
		t.Fatalf("run the tests in the systemd container: %v", err)
	}
	if code != 0 {
		t.Fatalf("the tests inside the systemd container failed (exit %d); their output is above", code)
	}
	if !strings.Contains(all.String(), "--- PASS") {
		t.Fatalf("no test passed inside the systemd container (-test.run %q matched nothing?)", run)
	}
}
