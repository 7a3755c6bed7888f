package spec

import (
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strings"
)

// PURL is a package URL (https://github.com/package-url/purl-spec) without
// its version: pkg:TYPE/NAMESPACE/NAME?QUALIFIERS. It names the package a
// server runs, for matching security advisories (OSV affected[].package).
type PURL struct {
	Type       string            `json:"type"`
	Namespace  string            `json:"namespace,omitempty"`
	Name       string            `json:"name"`
	Qualifiers map[string]string `json:"qualifiers,omitempty"`
	Version    string            `json:"-"` // the @version, when the URL gives one
}

var purlType = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9.+-]*$`)

// ParsePURL parses a package URL. A subpath (#…) is dropped.
func ParsePURL(s string) (PURL, error) {
	rest, ok := strings.CutPrefix(s, "pkg:")
	if !ok {
		return PURL{}, fmt.Errorf("%q is not a package URL: it starts with pkg:, such as \"pkg:golang/github.com/acme/notes\" or \"pkg:oci/notes?repository_url=registry.example.com/mcp/notes\"", s)
	}
	rest, _, _ = strings.Cut(rest, "#")
	rest, query, _ := strings.Cut(rest, "?")
	rest = strings.Trim(rest, "/")
	typ, path, ok := strings.Cut(rest, "/")
	if !ok || !purlType.MatchString(typ) || path == "" {
		return PURL{}, fmt.Errorf("%q is not a package URL: write pkg:TYPE/NAME or pkg:TYPE/NAMESPACE/NAME", s)
	}
	p := PURL{Type: strings.ToLower(typ)}
	if i := strings.LastIndex(path, "@"); i >= 0 && i > strings.LastIndex(path, "/") {
		path, p.Version = path[:i], path[i+1:]
	}
	segs := strings.Split(path, "/")
	for i, seg := range segs {
		u, err := url.PathUnescape(seg)
		if err != nil || u == "" {
			return PURL{}, fmt.Errorf("%q is not a package URL: segment %q of its name", s, seg)
		}
		segs[i] = u
	}
	p.Name = segs[len(segs)-1]
	p.Namespace = strings.Join(segs[:len(segs)-1], "/")
	if query != "" {
		q, err := url.ParseQuery(query)
		if err != nil {
			return PURL{}, fmt.Errorf("%q is not a package URL: its qualifiers: %v", s, err)
		}
		p.Qualifiers = map[string]string{}
		for k, v := range q {
			p.Qualifiers[strings.ToLower(k)] = v[0]
		}
	}
	return p, nil
}

// String writes the package URL back, qualifiers sorted.
func (p PURL) String() string {
	var b strings.Builder
	b.WriteString("pkg:" + p.Type + "/")
	if p.Namespace != "" {
		b.WriteString(p.Namespace + "/")
	}
	b.WriteString(p.Name)
	keys := make([]string, 0, len(p.Qualifiers))
	for k := range p.Qualifiers {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i, k := range keys {
		if i == 0 {
			b.WriteString("?")
		} else {
			b.WriteString("&")
		}
		b.WriteString(k + "=" + p.Qualifiers[k])
	}
	return b.String()
}

// ImagePURL is the package URL of an image repository (without tag or
// digest), as the purl spec writes OCI images:
// pkg:oci/NAME?repository_url=HOST/PATH/NAME. An image without a registry
// host is Docker Hub's: nginx is docker.io/library/nginx.
func ImagePURL(image string) (PURL, bool) {
	repo := ImageRepository(image)
	if repo == "" {
		return PURL{}, false
	}
	first, _, hasSlash := strings.Cut(repo, "/")
	if !hasSlash || !strings.ContainsAny(first, ".:") && first != "localhost" {
		// Docker Hub, as its clients name it: docker.io/library/nginx.
		if !hasSlash {
			repo = "library/" + repo
		}
		repo = "docker.io/" + repo
	}
	name := repo[strings.LastIndex(repo, "/")+1:]
	return PURL{Type: "oci", Name: strings.ToLower(name), Qualifiers: map[string]string{"repository_url": strings.ToLower(repo)}}, true
}

// ImageRepository is an image reference without its tag and digest:
// "127.0.0.1:5000/mcp/notes:1.2.0@sha256:…" gives "127.0.0.1:5000/mcp/notes".
func ImageRepository(image string) string {
	repo, _, _ := strings.Cut(image, "@")
	if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
		repo = repo[:i]
	}
	return repo
}
