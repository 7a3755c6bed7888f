package docker

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/distribution/reference"
	"github.com/docker/docker/api/types/registry"
)

// Registry credentials come from the provider's registry blocks first,
// then from a Docker CLI config.json (docker_config, else
// $DOCKER_CONFIG/config.json, else ~/.docker/config.json): its "auths", as
// `docker login` writes them, else its credential helper for the registry
// (credHelpers, else credsStore), run as docker-credential-NAME get, as the
// Docker CLI runs it.

// dockerHub is how the Docker Hub is named in config files and blocks.
var dockerHub = map[string]bool{
	"docker.io": true, "index.docker.io": true, "registry-1.docker.io": true,
}

// registryHost normalizes a registry name: "https://index.docker.io/v1/"
// and "index.docker.io" are "docker.io"; case and scheme do not count.
func registryHost(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	s = strings.TrimPrefix(strings.TrimPrefix(s, "https://"), "http://")
	s, _, _ = strings.Cut(s, "/")
	if dockerHub[s] {
		return "docker.io"
	}
	return s
}

// imageRegistry is the registry an image reference pulls from.
func imageRegistry(ref string) (string, error) {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return "", fmt.Errorf("%q is not an image reference: %w", ref, err)
	}
	return registryHost(reference.Domain(named)), nil
}

// dockerConfigFile is the config.json read for credentials, "" for none.
func dockerConfigFile(set string) string {
	if set != "" {
		if strings.HasPrefix(set, "~/") {
			if home, err := os.UserHomeDir(); err == nil {
				return filepath.Join(home, set[2:])
			}
		}
		return set
	}
	if d := os.Getenv("DOCKER_CONFIG"); d != "" {
		return filepath.Join(d, "config.json")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".docker", "config.json")
	}
	return ""
}

// dockerConfig is what tend reads of a Docker CLI config.json.
type dockerConfig struct {
	Auths map[string]struct {
		Auth          string `json:"auth"`
		Username      string `json:"username"`
		Password      string `json:"password"`
		IdentityToken string `json:"identitytoken"`
	} `json:"auths"`
	CredsStore  string            `json:"credsStore"`
	CredHelpers map[string]string `json:"credHelpers"`
}

// registryAuth returns the encoded credentials for pulling ref ("" for an
// anonymous pull), the secret they hold (to keep out of messages), and a
// note on where credentials were looked for, for a failed pull.
func (p *Provider) registryAuth(ctx context.Context, ref string) (encoded, secret, note string, err error) {
	host, err := imageRegistry(ref)
	if err != nil {
		return "", "", "", err
	}
	for _, r := range p.set.Registries {
		if registryHost(r.Host) != host {
			continue
		}
		pw := r.Password.Reveal()
		enc, err := registry.EncodeAuthConfig(registry.AuthConfig{Username: r.Username, Password: pw, ServerAddress: host})
		if err != nil {
			return "", "", "", err
		}
		return enc, pw, fmt.Sprintf("with the credentials of the registry %q block of provider %s", r.Host, p.key), nil
	}
	path := dockerConfigFile(p.set.DockerConfig)
	noCreds := fmt.Sprintf("without credentials: provider %s has no registry %q block", p.key, host)
	if path == "" {
		return "", "", noCreds, nil
	}
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) && p.set.DockerConfig == "" {
		return "", "", noCreds + " and there is no " + path, nil
	}
	if err != nil {
		return "", "", "", fmt.Errorf("docker_config: %w", err)
	}
	var cfg dockerConfig
	if err := json.Unmarshal(data, &cfg); err != nil {
		return "", "", "", fmt.Errorf("docker_config %s: not a Docker config file: %v", path, err)
	}
	for k, a := range cfg.Auths {
		if registryHost(k) != host {
			continue
		}
		ac := registry.AuthConfig{Username: a.Username, Password: a.Password, IdentityToken: a.IdentityToken, ServerAddress: host}
		if a.Auth != "" {
			raw, err := base64.StdEncoding.DecodeString(a.Auth)
			user, pw, ok := strings.Cut(string(raw), ":")
			if err != nil || !ok {
				return "", "", "", fmt.Errorf("docker_config %s: the auth of %s is not base64 of USER:PASSWORD", path, k)
			}
			ac.Username, ac.Password = user, pw
		}
		if ac.Username == "" && ac.IdentityToken == "" {
			continue // a helper's entry: no credentials here
		}
		enc, err := registry.EncodeAuthConfig(ac)
		if err != nil {
			return "", "", "", err
		}
		return enc, ac.Password + ac.IdentityToken, "with the credentials for " + k + " in " + path, nil
	}
	helper := cfg.CredHelpers[host]
	for k, h := range cfg.CredHelpers {
		if helper == "" && registryHost(k) == host {
			helper = h
		}
	}
	if helper == "" {
		helper = cfg.CredsStore
	}
	if helper == "" {
		return "", "", fmt.Sprintf("%s, and %s has none for it", noCreds, path), nil
	}
	ac, err := runCredentialHelper(ctx, helper, host)
	if err != nil {
		return "", "", "", fmt.Errorf("the credential helper of %s for %s: %w", path, host, err)
	}
	if ac == nil {
		return "", "", fmt.Sprintf("%s, and the credential helper %q of %s has none for it", noCreds, helper, path), nil
	}
	enc, err := registry.EncodeAuthConfig(*ac)
	if err != nil {
		return "", "", "", err
	}
	return enc, ac.Password + ac.IdentityToken, fmt.Sprintf("with the credentials of the credential helper %q of %s", helper, path), nil
}

// runCredentialHelper asks docker-credential-NAME for the credentials of
// host (nil when it has none), as the Docker CLI does: the server URL on
// its standard input, JSON on its standard output.
func runCredentialHelper(ctx context.Context, name, host string) (*registry.AuthConfig, error) {
	if strings.ContainsAny(name, "/\\ ") {
		return nil, fmt.Errorf("%q is not a credential helper name", name)
	}
	prog, err := exec.LookPath("docker-credential-" + name)
	if err != nil {
		return nil, fmt.Errorf("docker-credential-%s is not in PATH", name)
	}
	server := host
	if host == "docker.io" {
		server = "https://index.docker.io/v1/"
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, prog, "get")
	cmd.Stdin = strings.NewReader(server)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		// The helpers' way of saying "none".
		if msg := strings.TrimSpace(stdout.String() + stderr.String()); strings.Contains(msg, "credentials not found") {
			return nil, nil
		}
		return nil, fmt.Errorf("docker-credential-%s get: %v", name, err)
	}
	var out struct {
		Username string `json:"Username"`
		Secret   string `json:"Secret"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		return nil, fmt.Errorf("docker-credential-%s get: its answer is not JSON", name)
	}
	ac := &registry.AuthConfig{Username: out.Username, Password: out.Secret, ServerAddress: host}
	if out.Username == "<token>" {
		ac.Username, ac.Password, ac.IdentityToken = "", "", out.Secret
	}
	return ac, nil
}
