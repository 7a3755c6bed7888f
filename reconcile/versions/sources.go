package versions

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/storage/memory"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/tendhq/tend/spec"
)

// Source lists the releases of one release source.
type Source interface {
	// List returns the releases, newest first; a release's Digest may be
	// empty when it costs a request of its own (a registry's tags).
	List(ctx context.Context) ([]Release, error)
	// Digest returns the digest of one listed release.
	Digest(ctx context.Context, r Release) (string, error)
}

// Resolver opens the sources of servers and keeps each source's list of
// releases for its lifetime, so that servers sharing a source cost one
// listing.
type Resolver struct {
	// HTTP is the client of index sources; http.DefaultClient when nil.
	HTTP *http.Client
	// Keychain gives registry credentials; authn.DefaultKeychain (the
	// Docker CLI's config.json and credential helpers) when nil.
	Keychain authn.Keychain

	mu     sync.Mutex
	lists  map[string]*listing
	puller *remote.Puller
}

// registryPuller is the Resolver's one registry client: it keeps, per
// repository, the transport it authenticated (one ping and token
// exchange per repository, not per request).
func (r *Resolver) registryPuller() (*remote.Puller, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.puller != nil {
		return r.puller, nil
	}
	kc := r.Keychain
	if kc == nil {
		kc = authn.DefaultKeychain
	}
	p, err := remote.NewPuller(remote.WithAuthFromKeychain(kc))
	if err != nil {
		return nil, err
	}
	r.puller = p
	return p, nil
}

type listing struct {
	once sync.Once
	src  Source
	rs   []Release
	err  error

	mu      sync.Mutex
	digests map[string]*digestOnce // by tag
}

type digestOnce struct {
	once   sync.Once
	digest string
	err    error
}

// Digest returns the digest of a release of a source listed by Releases,
// asking the source once per Resolver and tag.
func (r *Resolver) Digest(ctx context.Context, rel *spec.Release, rs Release) (string, error) {
	if rs.Digest != "" {
		return rs.Digest, nil
	}
	r.mu.Lock()
	l := r.lists[rel.String()]
	r.mu.Unlock()
	if l == nil || l.src == nil {
		return "", fmt.Errorf("%s: not listed", redact(rel.String()))
	}
	l.mu.Lock()
	if l.digests == nil {
		l.digests = map[string]*digestOnce{}
	}
	d, ok := l.digests[rs.Tag]
	if !ok {
		d = &digestOnce{}
		l.digests[rs.Tag] = d
	}
	l.mu.Unlock()
	d.once.Do(func() { d.digest, d.err = l.src.Digest(ctx, rs) })
	return d.digest, d.err
}

// Source returns the source of a release block.
func (r *Resolver) Source(rel *spec.Release) (Source, error) {
	switch rel.Kind {
	case spec.ReleaseRegistry:
		repo, err := name.NewRepository(rel.Location)
		if err != nil {
			return nil, fmt.Errorf("%q is not an image repository: %v", rel.Location, err)
		}
		p, err := r.registryPuller()
		if err != nil {
			return nil, err
		}
		return &registrySource{repo: repo, puller: p}, nil
	case spec.ReleaseGit:
		return &gitSource{url: rel.Location}, nil
	case spec.ReleasePath:
		return &pathSource{template: rel.Location}, nil
	case spec.ReleaseIndex:
		c := r.HTTP
		if c == nil {
			c = http.DefaultClient
		}
		return &indexSource{url: rel.Location, client: c}, nil
	}
	return nil, fmt.Errorf("unknown release source %q", rel.Kind)
}

// Releases lists the releases of a source, once per Resolver. Its errors
// do not name the source.
func (r *Resolver) Releases(ctx context.Context, rel *spec.Release) ([]Release, Source, error) {
	key := rel.String()
	r.mu.Lock()
	if r.lists == nil {
		r.lists = map[string]*listing{}
	}
	l, ok := r.lists[key]
	if !ok {
		l = &listing{}
		r.lists[key] = l
	}
	r.mu.Unlock()
	l.once.Do(func() {
		if l.src, l.err = r.Source(rel); l.err == nil {
			l.rs, l.err = l.src.List(ctx)
		}
	})
	return l.rs, l.src, l.err
}

// redact drops the user information (user:password@) of URLs in s.
var userinfo = regexp.MustCompile(`(://)[^/@\s]+@`)

func redact(s string) string { return userinfo.ReplaceAllString(s, "$1") }

// redactErr is an error whose text went through redact.
func redactErr(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s", redact(err.Error()))
}

// registrySource lists the tags of an OCI image repository.
type registrySource struct {
	repo   name.Repository
	puller *remote.Puller
}

func (s *registrySource) List(ctx context.Context) ([]Release, error) {
	tags, err := s.puller.List(ctx, s.repo)
	if err != nil {
		return nil, redactErr(err)
	}
	return FromTags(tags), nil
}

// Digest is the digest of the tag's manifest (or index), from a HEAD
// request: what docker pull REPOSITORY@DIGEST pulls.
func (s *registrySource) Digest(ctx context.Context, r Release) (string, error) {
	desc, err := s.puller.Head(ctx, s.repo.Tag(r.Tag))
	if err != nil {
		return "", redactErr(err)
	}
	return desc.Digest.String(), nil
}

// gitSource lists the tags of a git repository (git ls-remote), each with
// the commit it points to.
type gitSource struct{ url string }

func (s *gitSource) List(ctx context.Context) ([]Release, error) {
	rem := git.NewRemote(memory.NewStorage(), &config.RemoteConfig{Name: "origin", URLs: []string{s.url}})
	refs, err := rem.ListContext(ctx, &git.ListOptions{PeelingOption: git.AppendPeeled})
	if err != nil {
		return nil, redactErr(err)
	}
	commits := map[string]plumbing.Hash{}
	var tags []string
	for _, ref := range refs {
		n := ref.Name().String()
		t, ok := strings.CutPrefix(n, "refs/tags/")
		if !ok {
			continue
		}
		if base, peeled := strings.CutSuffix(t, "^{}"); peeled {
			commits[base] = ref.Hash() // the commit an annotated tag points to
			continue
		}
		if _, seen := commits[t]; !seen {
			commits[t] = ref.Hash()
		}
		tags = append(tags, t)
	}
	rs := FromTags(tags)
	for i := range rs {
		rs[i].Digest = "sha1:" + commits[rs[i].Tag].String()
	}
	return rs, nil
}

func (s *gitSource) Digest(_ context.Context, r Release) (string, error) { return r.Digest, nil }

// pathSource lists the builds of a path template: each entry of the
// directory before {version} whose name matches, holding the rest of the
// path as a regular file.
type pathSource struct{ template string }

func (s *pathSource) split() (dir, prefix, suffix, rest string) {
	before, after, _ := strings.Cut(s.template, spec.VersionPlaceholder)
	dir, prefix = filepath.Split(before)
	suffix, rest, _ = strings.Cut(after, "/")
	if dir == "" {
		dir = "."
	}
	return dir, prefix, suffix, rest
}

func (s *pathSource) build(r Release) string {
	dir, prefix, suffix, rest := s.split()
	return filepath.Join(dir, prefix+r.Tag+suffix, rest)
}

func (s *pathSource) List(context.Context) ([]Release, error) {
	dir, prefix, suffix, _ := s.split()
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []Release
	for _, e := range entries {
		n := e.Name()
		if len(n) <= len(prefix)+len(suffix) || !strings.HasPrefix(n, prefix) || !strings.HasSuffix(n, suffix) {
			continue
		}
		r, ok := ParseTag(n[len(prefix) : len(n)-len(suffix)])
		if !ok {
			continue
		}
		if st, err := os.Stat(s.build(r)); err != nil || !st.Mode().IsRegular() {
			continue // not a build: a stray folder, a half-copied release
		}
		out = append(out, r)
	}
	SortNewestFirst(out)
	return out, nil
}

// Digest is the sha256 of the build's file.
func (s *pathSource) Digest(_ context.Context, r Release) (string, error) {
	f, err := os.Open(s.build(r))
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// IndexDocument is the JSON an index source serves (see docs/language.md):
//
//	{"releases": [{"version": "1.4.2", "digest": "sha256:…"}, …]}
//
// A version that is not MAJOR.MINOR.PATCH is skipped; a release without a
// sha256 digest is an error.
type IndexDocument struct {
	Releases []struct {
		Version string `json:"version"`
		Digest  string `json:"digest"`
	} `json:"releases"`
}

// maxIndex bounds the size of an index document.
const maxIndex = 16 << 20

var sha256Digest = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

type indexSource struct {
	url    string
	client *http.Client
}

func (s *indexSource) List(ctx context.Context) ([]Release, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return nil, redactErr(err)
	}
	if u, err := url.Parse(s.url); err == nil && u.User != nil {
		pw, _ := u.User.Password()
		req.SetBasicAuth(u.User.Username(), pw)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, redactErr(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET gave %s", resp.Status)
	}
	var doc IndexDocument
	dec := json.NewDecoder(io.LimitReader(resp.Body, maxIndex))
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("not an index document ({\"releases\": [{\"version\": …, \"digest\": …}]}): %v", err)
	}
	var out []Release
	for _, e := range doc.Releases {
		r, ok := ParseTag(e.Version)
		if !ok {
			continue
		}
		if !sha256Digest.MatchString(e.Digest) {
			return nil, fmt.Errorf("release %s has digest %q: write \"sha256:\" and 64 hex digits", e.Version, e.Digest)
		}
		r.Digest = e.Digest
		out = append(out, r)
	}
	SortNewestFirst(out)
	return out, nil
}

func (s *indexSource) Digest(_ context.Context, r Release) (string, error) { return r.Digest, nil }
