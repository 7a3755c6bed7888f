package docker

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/image"

	"github.com/tendhq/tend/providers"
	"github.com/tendhq/tend/providers/docker/dockertest"
	"github.com/tendhq/tend/spec"
)

const testImage = "tend-test/docker-unit"

func testServer(t *testing.T, name, version string, port int) *spec.Server {
	t.Helper()
	return &spec.Server{
		Name: name, Provider: "docker.test", Version: version,
		Image:    testImage + ":" + version,
		Replicas: 1,
		Ports:    []spec.Port{{Name: "http", Number: port, Protocol: "tcp"}},
		Env: map[string]spec.Value{
			"MODE":     spec.Plain("unit"),
			"DB_TOKEN": spec.Sensitive("s3cr3t-token-value"),
		},
		ConfigFiles: []*spec.ConfigFile{
			{Path: "/etc/notes/config.yaml", Content: spec.Plain("max_notes: 100\n"), Mode: 0o644},
			{Path: "secrets/token", Content: spec.Sensitive("s3cr3t-file-value"), Mode: 0o600},
		},
	}
}

func desiredOf(s *spec.Server, managedBy string) *providers.Desired {
	return &providers.Desired{Server: s, SpecHash: spec.RuntimeHash(s.Fields()), Revision: "r1", ManagedBy: managedBy}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func waitHealth(t *testing.T, addr, version string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/health")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 && strings.Contains(string(b), version) {
				return
			}
			err = nil
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not answer /health with %s: %v", addr, version, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func buildImages(t *testing.T, p *Provider, versions ...string) {
	t.Helper()
	for _, v := range versions {
		dockertest.Image(t, p.Client(), testImage+":"+v, dockertest.Build{Version: v})
	}
}

func TestEngineUnreachable(t *testing.T) {
	p, err := New(&spec.Provider{Type: Type, Name: "gone", Docker: &spec.DockerSettings{
		Host: "unix:///nonexistent/docker.sock", PullPolicy: "missing", PublishAddress: "127.0.0.1", RestartPolicy: "unless-stopped",
	}}, providers.Env{ManagedBy: "test"})
	if err != nil {
		t.Fatal(err)
	}
	res := p.Observe(context.Background(), providers.ObserveRequest{ManagedBy: "test"})
	if res.Err == nil || !strings.Contains(res.Err.Error(), "the Docker Engine at unix:///nonexistent/docker.sock is not reachable") {
		t.Fatalf("Observe with no engine: %v, want a not reachable error naming the host", res.Err)
	}
	s := testServer(t, "web", "1.0.0", 18000)
	sr := p.StartReplica(context.Background(), providers.StartRequest{Desired: desiredOf(s, "test"), Replica: 0})
	if sr.Err == nil || !strings.Contains(sr.Err.Error(), "not reachable") {
		t.Fatalf("StartReplica with no engine: %v", sr.Err)
	}
}

func TestImageNotPresent(t *testing.T) {
	p, managedBy := newTestProvider(t, "")
	s := testServer(t, "web", "9.9.9", dockertest.FreePorts(t, 1))
	s.Image = "tend-test/never-built:9.9.9"
	res := p.StartReplica(ctxT(t), providers.StartRequest{Desired: desiredOf(s, managedBy), Replica: 0})
	if res.Err == nil || !strings.Contains(res.Err.Error(), `image tend-test/never-built:9.9.9 is not present on the Docker host at `+dockertest.Host()+`, and pull_policy is "never"`) {
		t.Fatalf("StartReplica of a missing image with pull_policy never: %v", res.Err)
	}
	// missing: a pull is tried, and its failure said (no registry answers
	// here, or the repository does not exist).
	p.set.PullPolicy = "missing"
	res = p.StartReplica(ctxT(t), providers.StartRequest{Desired: desiredOf(s, managedBy), Replica: 0})
	if res.Err == nil || !strings.Contains(res.Err.Error(), "is not present on the Docker host at "+dockertest.Host()+" and could not be pulled") {
		t.Fatalf("StartReplica of an image that cannot be pulled: %v", res.Err)
	}
	if got := p.Observe(ctxT(t), providers.ObserveRequest{ManagedBy: managedBy}); len(got.Instances) != 0 || got.Err != nil {
		t.Fatalf("a refused start left %d instances (%v)", len(got.Instances), got.Err)
	}
}

// A replace whose new container cannot start (its port is taken) leaves the
// old replica running.
func TestPortTakenKeepsOldReplica(t *testing.T) {
	p, managedBy := newTestProvider(t, "")
	buildImages(t, p, "1.0.0", "2.0.0")
	port := dockertest.FreePorts(t, 1)
	old := desiredOf(testServer(t, "web", "1.0.0", port), managedBy)
	if res := p.StartReplica(ctxT(t), providers.StartRequest{Desired: old, Replica: 0}); res.Err != nil {
		t.Fatal(res.Err)
	}
	waitHealth(t, "127.0.0.1:"+strconv.Itoa(port), "1.0.0")

	// 2.0.0 adds a port that something else holds.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	taken := l.Addr().(*net.TCPAddr).Port
	s2 := testServer(t, "web", "2.0.0", port)
	s2.Ports = append(s2.Ports, spec.Port{Name: "admin", Number: taken, Protocol: "tcp"})
	res := p.StartReplica(ctxT(t), providers.StartRequest{Desired: desiredOf(s2, managedBy), Replica: 0})
	if res.Err == nil {
		t.Fatal("StartReplica on a taken port succeeded")
	}
	msg := res.Err.Error()
	for _, want := range []string{"already taken on the Docker host", "127.0.0.1:" + strconv.Itoa(taken), "the replica that ran before was started again"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
	if strings.Contains(msg, "s3cr3t") {
		t.Errorf("error shows a secret: %s", msg)
	}
	waitHealth(t, "127.0.0.1:"+strconv.Itoa(port), "1.0.0")
	obs := p.Observe(ctxT(t), providers.ObserveRequest{ManagedBy: managedBy})
	if obs.Err != nil || len(obs.Instances) != 1 || obs.Instances[0].Version != "1.0.0" || obs.Instances[0].SpecHash != old.SpecHash {
		t.Fatalf("after the failed replace, Observe: %+v %v; want the 1.0.0 replica alone", obs.Instances, obs.Err)
	}
}

// Config files, env and secrets reach the container; a config file edited
// inside the container is drift; nothing secret shows in an instance.
func TestFilesEnvSecretsAndFileDrift(t *testing.T) {
	p, managedBy := newTestProvider(t, "")
	buildImages(t, p, "1.0.0")
	port := dockertest.FreePorts(t, 1)
	d := desiredOf(testServer(t, "web", "1.0.0", port), managedBy)
	res := p.StartReplica(ctxT(t), providers.StartRequest{Desired: d, Replica: 0})
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	waitHealth(t, "127.0.0.1:"+strconv.Itoa(port), "1.0.0")
	inst := res.Instance
	b, _ := json.Marshal(inst)
	if bytes.Contains(b, []byte("s3cr3t")) {
		t.Fatalf("the instance shows a secret: %s", b)
	}

	var out, errb bytes.Buffer
	r := p.Exec(ctxT(t), providers.ExecRequest{Desired: d, Instance: &inst, Stdout: &out, Stderr: &errb,
		Command: []string{"sh", "-c", `cat /etc/notes/config.yaml /secrets/token; echo; echo "$MODE $PORT $TEND_REPLICA"; stat -c %a /secrets/token`}})
	if r.Err != nil || r.ExitCode != 0 {
		t.Fatalf("exec: %v, exit %d, stderr %q", r.Err, r.ExitCode, errb.String())
	}
	want := "max_notes: 100\ns3cr3t-file-value\nunit " + strconv.Itoa(port) + " 0\n600\n"
	if out.String() != want {
		t.Fatalf("in the container: %q, want %q", out.String(), want)
	}

	// An exit code comes back as it is.
	r = p.Exec(ctxT(t), providers.ExecRequest{Desired: d, Instance: &inst, Command: []string{"sh", "-c", "exit 7"}})
	if r.Err != nil || r.ExitCode != 7 {
		t.Fatalf("exec exit 7: %v, exit %d", r.Err, r.ExitCode)
	}

	// Edit a config file by hand.
	r = p.Exec(ctxT(t), providers.ExecRequest{Desired: d, Instance: &inst, Command: []string{"sh", "-c", "echo 'max_notes: 5' > /etc/notes/config.yaml"}})
	if r.Err != nil || r.ExitCode != 0 {
		t.Fatalf("exec: %v, exit %d", r.Err, r.ExitCode)
	}
	obs := p.Observe(ctxT(t), providers.ObserveRequest{ManagedBy: managedBy})
	if obs.Err != nil || len(obs.Instances) != 1 {
		t.Fatalf("Observe: %+v %v", obs.Instances, obs.Err)
	}
	if drift := obs.Instances[0].Drift; len(drift) != 1 || drift[0] != "config file /etc/notes/config.yaml was changed by hand" {
		t.Fatalf("drift after editing the config file: %q", drift)
	}
	// StartReplica of the same desired state puts it back.
	if res := p.StartReplica(ctxT(t), providers.StartRequest{Desired: d, Replica: 0}); res.Err != nil || len(res.Instance.Drift) != 0 {
		t.Fatalf("StartReplica after drift: %v, drift %q", res.Err, res.Instance.Drift)
	}

	// The replica put back is a new container: its first line of log comes
	// when it has started, so wait for it to answer before reading them.
	waitHealth(t, "127.0.0.1:"+strconv.Itoa(port), "1.0.0")
	obs = p.Observe(ctxT(t), providers.ObserveRequest{ManagedBy: managedBy})
	var logs []byte
	var err error
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		logs, err = p.Logs(ctxT(t), obs.Instances[0], 50)
		if (err == nil && bytes.Contains(logs, []byte("1.0.0"))) || time.Now().After(deadline) {
			break
		}
	}
	if err != nil || !bytes.Contains(logs, []byte("1.0.0")) {
		t.Fatalf("logs of the replica: %v\n%s", err, logs)
	}
}

// A one-off task runs from the server's image with its env and config
// files, and is removed.
func TestOneOffTask(t *testing.T) {
	p, managedBy := newTestProvider(t, "")
	buildImages(t, p, "1.0.0")
	d := desiredOf(testServer(t, "web", "1.0.0", dockertest.FreePorts(t, 1)), managedBy)
	var out bytes.Buffer
	r := p.Exec(ctxT(t), providers.ExecRequest{Desired: d, Stdout: &out, Stderr: &out,
		Command: []string{"sh", "-c", `echo "migrate $MODE"; cat /etc/notes/config.yaml; exit 3`}})
	if r.Err != nil || r.ExitCode != 3 {
		t.Fatalf("task: %v, exit %d, output %q", r.Err, r.ExitCode, out.String())
	}
	if out.String() != "migrate unit\nmax_notes: 100\n" {
		t.Fatalf("task output %q", out.String())
	}
	obs := p.Observe(ctxT(t), providers.ObserveRequest{ManagedBy: managedBy})
	if obs.Err != nil || len(obs.Instances) != 0 {
		t.Fatalf("a task shows as an instance: %+v %v", obs.Instances, obs.Err)
	}
}

// On the provider's network, a replica reaches another server by its name.
func TestNetworkAlias(t *testing.T) {
	netName := "tend-test-net-" + dockertest.Key(t.Name())
	p, managedBy := newTestProvider(t, netName)
	buildImages(t, p, "1.0.0")
	t.Cleanup(func() { p.Client().NetworkRemove(context.Background(), netName) })
	api := testServer(t, "api", "1.0.0", dockertest.FreePorts(t, 1))
	web := testServer(t, "web", "1.0.0", dockertest.FreePorts(t, 1))
	for _, s := range []*spec.Server{api, web} {
		if res := p.StartReplica(ctxT(t), providers.StartRequest{Desired: desiredOf(s, managedBy), Replica: 0}); res.Err != nil {
			t.Fatal(res.Err)
		}
	}
	obs := p.Observe(ctxT(t), providers.ObserveRequest{ManagedBy: managedBy, Server: "web"})
	if obs.Err != nil || len(obs.Instances) != 1 {
		t.Fatalf("Observe web: %+v %v", obs.Instances, obs.Err)
	}
	var out bytes.Buffer
	url := "http://api:" + strconv.Itoa(api.Ports[0].Number) + "/health"
	deadline := time.Now().Add(20 * time.Second)
	for {
		out.Reset()
		r := p.Exec(ctxT(t), providers.ExecRequest{Instance: &obs.Instances[0], Stdout: &out, Stderr: &out,
			Command: []string{"busybox", "wget", "-q", "-O", "-", url}})
		if r.Err == nil && r.ExitCode == 0 && strings.Contains(out.String(), `"status":"ok"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("web cannot reach %s on network %s: %v exit %d %q", url, netName, r.Err, r.ExitCode, out.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Images are pulled from a real registry when missing, and a digest pins
// one: the container runs exactly that image.
func TestPullFromRegistryAndDigestPinning(t *testing.T) {
	p, managedBy := newTestProvider(t, "")
	buildImages(t, p, "1.0.0")
	cli := p.Client()
	ctx := ctxT(t)
	repo := dockertest.Registry(t) + "/tend-test/pulled"
	ref := repo + ":1.0.0"
	if err := cli.ImageTag(ctx, testImage+":1.0.0", ref); err != nil {
		t.Fatal(err)
	}
	digest := dockertest.Push(t, cli, ref)
	untag := func(r string) {
		if _, err := cli.ImageRemove(ctx, r, image.RemoveOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
			t.Fatalf("untag %s: %v", r, err)
		}
	}
	untag(ref)
	t.Cleanup(func() { untag(ref); untag(repo + "@" + digest) })
	if _, err := cli.ImageInspect(ctx, ref); !cerrdefs.IsNotFound(err) {
		t.Fatalf("%s is still present after untagging: %v", ref, err)
	}

	p.set.PullPolicy = "missing"
	s := testServer(t, "pulled", "1.0.0", dockertest.FreePorts(t, 1))
	s.Image = ref
	if res := p.StartReplica(ctx, providers.StartRequest{Desired: desiredOf(s, managedBy), Replica: 0}); res.Err != nil {
		t.Fatalf("start from an image to pull: %v", res.Err)
	}
	waitHealth(t, "127.0.0.1:"+strconv.Itoa(s.Ports[0].Number), "1.0.0")
	img, err := cli.ImageInspect(ctx, ref)
	if err != nil {
		t.Fatalf("the image was not pulled: %v", err)
	}
	if !slices.Contains(img.RepoDigests, repo+"@"+digest) {
		t.Fatalf("pulled image's digests %v lack %s", img.RepoDigests, digest)
	}

	pinned := testServer(t, "pinned", "1.0.0", dockertest.FreePorts(t, 1))
	pinned.Image = repo + "@" + digest
	res := p.StartReplica(ctx, providers.StartRequest{Desired: desiredOf(pinned, managedBy), Replica: 0})
	if res.Err != nil {
		t.Fatalf("start a digest-pinned image: %v", res.Err)
	}
	c, err := cli.ContainerInspect(ctx, res.Instance.ID)
	if err != nil || c.Config.Image != pinned.Image || c.Image != img.ID {
		t.Fatalf("the pinned container runs %q (%s), want %s (%s): %v", c.Config.Image, c.Image, pinned.Image, img.ID, err)
	}

	missing := testServer(t, "missing", "1.0.0", dockertest.FreePorts(t, 1))
	missing.Image = repo + "@sha256:" + strings.Repeat("0", 64)
	res = p.StartReplica(ctx, providers.StartRequest{Desired: desiredOf(missing, managedBy), Replica: 0})
	if res.Err == nil || !strings.Contains(res.Err.Error(), "is not present on the Docker host at "+dockertest.Host()+" and could not be pulled") {
		t.Fatalf("start an image the registry does not have: %v", res.Err)
	}
}
