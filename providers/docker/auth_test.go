package docker

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/image"

	"github.com/tendhq/tend/providers"
	"github.com/tendhq/tend/providers/docker/dockertest"
	"github.com/tendhq/tend/spec"
)

func TestRegistryHost(t *testing.T) {
	for in, want := range map[string]string{
		"https://index.docker.io/v1/": "docker.io",
		"registry-1.docker.io":        "docker.io",
		"Registry.Example.com:5000":   "registry.example.com:5000",
		"http://127.0.0.1:5000/":      "127.0.0.1:5000",
	} {
		if got := registryHost(in); got != want {
			t.Errorf("registryHost(%q) = %q, want %q", in, got, want)
		}
	}
	for ref, want := range map[string]string{
		"busybox":                           "docker.io",
		"library/postgres:16":               "docker.io",
		"registry.example.com:5000/mcp/a:1": "registry.example.com:5000",
		"127.0.0.1:5000/x@sha256:" + strings.Repeat("a", 64): "127.0.0.1:5000",
	} {
		if got, err := imageRegistry(ref); err != nil || got != want {
			t.Errorf("imageRegistry(%q) = %q, %v; want %q", ref, got, err, want)
		}
	}
}

// TestPullWithCredentials pulls from a real registry that requires basic
// authentication: refused without credentials (and the error says where
// tend looked), pulled with a registry block, pulled with the auths of a
// Docker config file; a wrong password never shows in the error.
func TestPullWithCredentials(t *testing.T) {
	p, managedBy := newTestProvider(t, "")
	buildImages(t, p, "1.0.0")
	cli := p.Client()
	ctx := ctxT(t)
	const user, password = "deploy", "pull-s3cret-pw"
	addr := dockertest.RegistryWithAuth(t, user, password)
	ref := addr + "/tend-test/private:1.0.0"
	if err := cli.ImageTag(ctx, testImage+":1.0.0", ref); err != nil {
		t.Fatal(err)
	}
	dockertest.PushAs(t, cli, ref, user, password)
	untag := func() {
		if _, err := cli.ImageRemove(ctx, ref, image.RemoveOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
			t.Fatalf("untag %s: %v", ref, err)
		}
	}
	untag()
	t.Cleanup(untag)

	emptyConfig := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(emptyConfig, []byte(`{"auths": {}, "credHelpers": {"ghcr.io": "pass"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	start := func(name string) error {
		t.Helper()
		p.set.PullPolicy = "always"
		s := testServer(t, name, "1.0.0", dockertest.FreePorts(t, 1))
		s.Image = ref
		res := p.StartReplica(ctx, providers.StartRequest{Desired: desiredOf(s, managedBy), Replica: 0})
		if res.Err == nil {
			waitHealth(t, "127.0.0.1:"+strconv.Itoa(s.Ports[0].Number), "1.0.0")
			p.StopReplica(ctx, providers.StopRequest{Instance: res.Instance})
			untag()
		}
		return res.Err
	}

	p.set.DockerConfig = emptyConfig
	err := start("anonymous")
	if err == nil {
		t.Fatal("an anonymous pull from a registry that requires a login succeeded")
	}
	for _, want := range []string{"could not be pulled", "without credentials: provider docker.test has no registry \"" + addr + "\" block", emptyConfig + " has none for it"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the anonymous pull's error does not say %q: %v", want, err)
		}
	}

	p.set.Registries = []*spec.RegistryAuth{{Host: addr, Username: user, Password: spec.Sensitive("wrong-pw-do-not-show")}}
	err = start("wrong")
	if err == nil || strings.Contains(err.Error(), "wrong-pw-do-not-show") || !strings.Contains(err.Error(), "with the credentials of the registry") {
		t.Errorf("a pull with a wrong password: %v", err)
	}

	p.set.Registries[0].Password = spec.Sensitive(password)
	if err := start("block"); err != nil {
		t.Fatalf("a pull with the registry block's credentials: %v", err)
	}

	p.set.Registries = nil
	withAuths := filepath.Join(t.TempDir(), "config.json")
	auth := base64.StdEncoding.EncodeToString([]byte(user + ":" + password))
	if err := os.WriteFile(withAuths, []byte(`{"auths": {"http://`+addr+`": {"auth": "`+auth+`"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	p.set.DockerConfig = withAuths
	if err := start("config"); err != nil {
		t.Fatalf("a pull with the config file's auths: %v", err)
	}

	// A credential helper, run as the Docker CLI runs it: the server on
	// its input, JSON on its output; "credentials not found" for others.
	bin := t.TempDir()
	helper := "#!/bin/sh\nread host\nif [ \"$host\" = \"" + addr + "\" ]; then\n" +
		"  printf '{\"ServerURL\":\"%s\",\"Username\":\"" + user + "\",\"Secret\":\"" + password + "\"}' \"$host\"\n" +
		"else\n  echo 'credentials not found in native keychain'\n  exit 1\nfi\n"
	if err := os.WriteFile(filepath.Join(bin, "docker-credential-tendtest"), []byte(helper), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	withHelper := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(withHelper, []byte(`{"auths": {}, "credsStore": "tendtest"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	p.set.DockerConfig = withHelper
	if err := start("helper"); err != nil {
		t.Fatalf("a pull with the credential helper's credentials: %v", err)
	}
	if _, _, note, err := p.registryAuth(ctx, "registry.example.com/other:1"); err != nil || !strings.Contains(note, `the credential helper "tendtest" of `+withHelper+" has none for it") {
		t.Errorf("a registry the helper has nothing for: %q, %v", note, err)
	}
	p.set.DockerConfig = emptyConfig
	if err := os.WriteFile(emptyConfig, []byte(`{"credsStore": "no-such-helper"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := start("nohelper"); err == nil || !strings.Contains(err.Error(), "docker-credential-no-such-helper is not in PATH") {
		t.Errorf("a missing credential helper: %v", err)
	}
}
