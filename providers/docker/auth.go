package docker

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/distribution/reference"
	"github.com/docker/docker/api/types/registry"
)

// Registry credentials come from the provider's registry blocks first,
// then from a Docker CLI config.json ("auths", as `docker login` writes
// them): docker_config, else $DOCKER_CONFIG/config.json, else
// ~/.docker/config.json. Credential helpers (credsStore, credHelpers) are
// not run; a registry whose credentials only a helper has is reported.

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
func (p *Provider) registryAuth(ref string) (encoded, secret, note string, err error) {
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
	if helper := cfg.CredHelpers[host]; helper != "" || cfg.CredsStore != "" {
		if helper == "" {
			helper = cfg.CredsStore
		}
		return "", "", fmt.Sprintf("%s, and %s leaves its credentials to the credential helper %q, which tend does not run", noCreds, path, helper), nil
	}
	return "", "", fmt.Sprintf("%s, and %s has none for it", noCreds, path), nil
}
