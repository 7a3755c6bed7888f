package versions

import (
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/tendhq/tend/spec"
)

// ConfigKeychain gives a registry the credentials of a docker provider's
// registry "HOST" block (the first provider, by name, that has one), and
// otherwise what authn.DefaultKeychain finds in the Docker CLI's config:
// the credentials tend pulls images with. A password that is not known
// (an unset secret) counts as no block.
func ConfigKeychain(cfg *spec.Config) authn.Keychain {
	blocks := map[string]*spec.RegistryAuth{}
	keys := make([]string, 0, len(cfg.Providers))
	for k := range cfg.Providers {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		p := cfg.Providers[k]
		if p.Docker == nil {
			continue
		}
		for _, ra := range p.Docker.Registries {
			h := normalHost(ra.Host)
			if _, ok := blocks[h]; !ok && ra.Password.IsKnown() {
				blocks[h] = ra
			}
		}
	}
	return configKeychain{blocks: blocks}
}

type configKeychain struct{ blocks map[string]*spec.RegistryAuth }

func (k configKeychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	if ra, ok := k.blocks[normalHost(r.RegistryStr())]; ok {
		return authn.FromConfig(authn.AuthConfig{Username: ra.Username, Password: ra.Password.Reveal()}), nil
	}
	return authn.DefaultKeychain.Resolve(r)
}

// normalHost names a registry as a registry block does: lower case,
// without scheme or path, Docker Hub as docker.io.
func normalHost(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	s = strings.TrimPrefix(strings.TrimPrefix(s, "https://"), "http://")
	s, _, _ = strings.Cut(s, "/")
	switch s {
	case "index.docker.io", "registry-1.docker.io":
		return "docker.io"
	}
	return s
}
