// Package dockertest gives tests a real Docker Engine and images of
// mcp-notes built FROM scratch (no image can be pulled on the machines the
// tests run on).
//
// `make test` starts an engine first (hack/docker-engine.sh). Without one,
// Engine skips the test, or fails it when TEND_REQUIRE_DOCKER=1.
package dockertest

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/registry"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"
	"golang.org/x/crypto/bcrypt"

	"github.com/tendhq/tend/internal/testports"
	"github.com/tendhq/tend/providers"
)

// Required reports whether the docker tests must run (TEND_REQUIRE_DOCKER=1).
func Required() bool { return os.Getenv("TEND_REQUIRE_DOCKER") == "1" }

// Host is the engine address the tests use: DOCKER_HOST, or the default
// socket.
func Host() string {
	if h := os.Getenv("DOCKER_HOST"); h != "" {
		return h
	}
	return "unix:///var/run/docker.sock"
}

// Engine returns a client of the test engine, once it answers.
func Engine(t testing.TB) *client.Client {
	t.Helper()
	cli, err := client.NewClientWithOpts(client.WithHost(Host()), client.WithAPIVersionNegotiation())
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err = cli.Ping(ctx)
	}
	if err != nil {
		msg := fmt.Sprintf("no Docker Engine answers at %s (make test starts one with hack/docker-engine.sh): %v", Host(), err)
		if Required() {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// Build is one build of mcp-notes.
type Build struct {
	Version string
	Fault   string // crash | unhealthy | no-mcp (see examples/mcp-notes)
	Toolset string // the tools it serves (see examples/mcp-notes)
	// Files are extra files of the image (path → content, mode 0755), such
	// as a script standing in for a server's own tool.
	Files map[string]string
}

var (
	binMu    sync.Mutex
	binCache = map[string]string{}
	binDir   string
)

// moduleRoot finds the directory of go.mod above the working directory.
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

// binary builds a static mcp-notes once per process and build.
func binary(t testing.TB, b Build) string {
	t.Helper()
	binMu.Lock()
	defer binMu.Unlock()
	key := b.Version + "|" + b.Fault + "|" + b.Toolset
	if p, ok := binCache[key]; ok {
		return p
	}
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	if binDir == "" {
		if binDir, err = os.MkdirTemp("", "tend-dockertest-"); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(binDir, fmt.Sprintf("mcp-notes-%d", len(binCache)))
	ld := "-X main.version=" + b.Version
	if b.Fault != "" {
		ld += " -X main.fault=" + b.Fault
	}
	if b.Toolset != "" {
		ld += " -X main.toolset=" + b.Toolset
	}
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", ld, "-o", out, "./examples/mcp-notes")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if o, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build mcp-notes %s: %v\n%s", key, err, o)
	}
	binCache[key] = out
	return out
}

var (
	imgMu   sync.Mutex
	imgDone = map[string]bool{}
)

// Image builds an image of mcp-notes tagged ref, FROM scratch: the static
// binary at /mcp-notes listening on every address of the container, with
// NOTES_DATA_DIR=/data, and busybox as /bin/sh when the machine has a
// static busybox. The same ref is built once per process.
func Image(t testing.TB, cli *client.Client, ref string, b Build) {
	t.Helper()
	imgMu.Lock()
	defer imgMu.Unlock()
	if imgDone[ref] {
		return
	}
	bin := binary(t, b)
	files := map[string]fileEntry{}
	add := func(name, src string, content []byte) {
		if src != "" {
			c, err := os.ReadFile(src)
			if err != nil {
				t.Fatal(err)
			}
			content = c
		}
		files[name] = fileEntry{content: content, mode: 0o755}
	}
	add("rootfs/mcp-notes", bin, nil)
	if bb := staticBusybox(); bb != "" {
		add("rootfs/bin/busybox", bb, nil)
		add("rootfs/bin/sh", bb, nil)
	}
	for p, c := range b.Files {
		add("rootfs/"+strings.TrimPrefix(p, "/"), "", []byte(c))
	}
	dockerfile := "FROM scratch\nCOPY rootfs/ /\nENV NOTES_DATA_DIR=/data PATH=/bin\n" +
		"LABEL tend.dev/test-image=mcp-notes\n" +
		`ENTRYPOINT ["/mcp-notes", "--host", "0.0.0.0"]` + "\n"
	files["Dockerfile"] = fileEntry{content: []byte(dockerfile), mode: 0o644}

	var ctxTar bytes.Buffer
	tw := tar.NewWriter(&ctxTar)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		f := files[n]
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: f.mode, Size: int64(len(f.content)), Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0)}); err != nil {
			t.Fatal(err)
		}
		tw.Write(f.content)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := cli.ImageBuild(ctx, &ctxTar, build.ImageBuildOptions{
		Tags: []string{ref}, Remove: true, ForceRemove: true, Version: build.BuilderV1,
	})
	if err != nil {
		t.Fatalf("build image %s: %v", ref, err)
	}
	defer res.Body.Close()
	dec := json.NewDecoder(res.Body)
	for {
		var m struct {
			Error       string `json:"error"`
			ErrorDetail struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
		}
		if err := dec.Decode(&m); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("build image %s: %v", ref, err)
		}
		if m.Error != "" {
			t.Fatalf("build image %s: %s", ref, m.Error)
		}
	}
	imgDone[ref] = true
}

type fileEntry struct {
	content []byte
	mode    int64
}

// staticBusybox returns the path of a statically linked busybox, or "".
func staticBusybox() string {
	for _, p := range []string{"/bin/busybox", "/usr/bin/busybox"} {
		f, err := elf.Open(p)
		if err != nil {
			continue
		}
		static := true
		for _, prog := range f.Progs {
			if prog.Type == elf.PT_INTERP {
				static = false
			}
		}
		f.Close()
		if static {
			return p
		}
	}
	return ""
}

// Key returns a short stable hash of s, for unique names.
func Key(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:4])
}

// Cleanup removes every container and volume owned by managedBy (tasks
// included), for a test's t.Cleanup.
func Cleanup(t testing.TB, cli *client.Client, managedBy string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	f := filters.NewArgs(filters.Arg("label", providers.LabelManagedBy+"="+managedBy))
	list, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	if err != nil {
		t.Errorf("cleanup: list containers of %s: %v", managedBy, err)
		return
	}
	for _, c := range list {
		if err := cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
			t.Errorf("cleanup: remove container %s: %v", c.ID[:12], err)
		}
	}
	vols, err := cli.VolumeList(ctx, volume.ListOptions{Filters: f})
	if err != nil {
		t.Errorf("cleanup: list volumes of %s: %v", managedBy, err)
		return
	}
	for _, v := range vols.Volumes {
		if err := cli.VolumeRemove(ctx, v.Name, true); err != nil && !cerrdefs.IsNotFound(err) {
			t.Errorf("cleanup: remove volume %s: %v", v.Name, err)
		}
	}
}

// FreePorts returns the first of n consecutive ports free on 127.0.0.1.
func FreePorts(t testing.TB, n int) int { return testports.Consecutive(t, n) }

// Registry starts a Docker registry (Debian's docker-registry, the
// distribution project's) on a free loopback port for the test, and returns
// its address, such as 127.0.0.1:41234. The Docker Engine trusts registries
// on loopback without TLS.
func Registry(t testing.TB) string {
	t.Helper()
	return RegistryWithAuth(t, "", "")
}

// RegistryWithAuth is Registry, requiring basic authentication as user
// with password (an htpasswd file with a bcrypt hash) when user is set.
func RegistryWithAuth(t testing.TB, user, password string) string {
	t.Helper()
	bin, err := exec.LookPath("docker-registry")
	if err != nil {
		msg := "no docker-registry here (make test installs Debian's docker-registry)"
		if Required() {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	dir := t.TempDir()
	addr := "127.0.0.1:" + strconv.Itoa(FreePorts(t, 1))
	cfg := fmt.Sprintf("version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n", filepath.Join(dir, "data"), addr)
	if user != "" {
		hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		htpasswd := filepath.Join(dir, "htpasswd")
		if err := os.WriteFile(htpasswd, []byte(user+":"+string(hash)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg += fmt.Sprintf("auth:\n  htpasswd:\n    realm: tend-test\n    path: %s\n", htpasswd)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.yml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	cmd := exec.Command(bin, "serve", filepath.Join(dir, "config.yml"))
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || (user != "" && resp.StatusCode == http.StatusUnauthorized) {
				return addr
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the registry at %s does not answer: %v\n%s", addr, err, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Push pushes a local image to its registry and returns the digest the
// registry gives it.
func Push(t testing.TB, cli *client.Client, ref string) string {
	t.Helper()
	return PushAs(t, cli, ref, "", "")
}

// PushAs is Push with basic authentication as user.
func PushAs(t testing.TB, cli *client.Client, ref, user, password string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	auth := base64.URLEncoding.EncodeToString([]byte("{}"))
	if user != "" {
		var err error
		if auth, err = registry.EncodeAuthConfig(registry.AuthConfig{Username: user, Password: password}); err != nil {
			t.Fatal(err)
		}
	}
	rc, err := cli.ImagePush(ctx, ref, image.PushOptions{RegistryAuth: auth})
	if err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	defer rc.Close()
	var digest string
	dec := json.NewDecoder(rc)
	for {
		var m struct {
			Error string `json:"error"`
			Aux   struct {
				Digest string `json:"Digest"`
			} `json:"aux"`
		}
		if err := dec.Decode(&m); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("push %s: %v", ref, err)
		}
		if m.Error != "" {
			t.Fatalf("push %s: %s", ref, m.Error)
		}
		if m.Aux.Digest != "" {
			digest = m.Aux.Digest
		}
	}
	if digest == "" {
		t.Fatalf("push %s: the registry gave no digest", ref)
	}
	return digest
}
