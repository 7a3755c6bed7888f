package spec

import (
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// Kinds of release source.
const (
	ReleaseRegistry = "registry" // the tags of an OCI image repository
	ReleaseGit      = "git"      // the tags of a git repository
	ReleasePath     = "path"     // a directory of builds, one entry per version
	ReleaseIndex    = "index"    // an HTTP JSON index of releases
)

// VersionPlaceholder stands for the version in a path template of a
// release source: path = "/opt/builds/mcp-notes-{version}".
const VersionPlaceholder = "{version}"

// Release is where a server's versions come from: the source a version
// constraint is resolved against.
type Release struct {
	Kind string `json:"kind"` // ReleaseRegistry, ReleaseGit, ReleasePath or ReleaseIndex
	// Location is the image repository (host/name), the git URL, the path
	// template (with VersionPlaceholder once) or the index URL.
	Location string `json:"location"`
	// Inferred is true when the source was read from image or command
	// rather than a release block.
	Inferred bool      `json:"inferred,omitempty"`
	Range    hcl.Range `json:"-"`
}

// String names the source as the lock file records it, such as
// "registry:registry.example.com/mcp/search".
func (r *Release) String() string { return r.Kind + ":" + r.Location }

var releaseSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
	{Name: ReleaseRegistry}, {Name: ReleaseGit}, {Name: ReleasePath}, {Name: ReleaseIndex}, {Name: "package"},
}}

// serverRelease decodes a server's release block: at most one of
// registry, git, path and index, and the package; one of them at least.
func (d *decoder) serverRelease(s *Server, b *hcl.Block, r *reader) {
	c := d.blockContent(r, b.Body, releaseSchema)
	var set []*hcl.Attribute
	for _, k := range []string{ReleaseRegistry, ReleaseGit, ReleasePath, ReleaseIndex} {
		if a, ok := c.Attributes[k]; ok {
			set = append(set, a)
		}
	}
	_, hasPackage := c.Attributes["package"]
	if hasPackage {
		d.releasePackage(s, c.Attributes, r)
	}
	if len(set) == 0 && hasPackage {
		return
	}
	if len(set) != 1 {
		d.errorf(b.DefRange.Ptr(), "Invalid release block",
			"A release block names one source: registry = \"HOST/REPOSITORY\", git = \"URL\", path = \"DIR/NAME-{version}\" or index = \"URL\" (and may name the package); this one names %d.", len(set))
		return
	}
	a := set[0]
	var loc string
	if !r.str(c.Attributes, a.Name, &loc) {
		return
	}
	rel := &Release{Kind: a.Name, Location: loc, Range: a.Expr.Range()}
	if msg := rel.check(); msg != "" {
		d.errorf(a.Expr.Range().Ptr(), "Invalid release source", "%s", msg)
		return
	}
	s.Release = rel
}

// check returns what is wrong with a release source, or "".
func (r *Release) check() string {
	switch {
	case r.Location == "":
		return "The release source is empty."
	case r.Kind == ReleasePath && strings.Count(r.Location, VersionPlaceholder) != 1:
		return "A path names where each version's build lies, with {version} once, such as \"/opt/builds/mcp-notes-{version}\" or \"/opt/builds/{version}/mcp-notes\"."
	case r.Kind == ReleaseRegistry && (strings.Contains(r.Location, "://") || strings.ContainsAny(r.Location, ":@") && !hostPortOnly(r.Location)):
		return "A registry source is an image repository without tag or digest, such as \"registry.example.com/mcp/search\"."
	case (r.Kind == ReleaseIndex) && !strings.HasPrefix(r.Location, "http://") && !strings.HasPrefix(r.Location, "https://"):
		return "An index is an http:// or https:// URL of a JSON document (see docs/language.md, \"Release sources\")."
	}
	return ""
}

// hostPortOnly reports whether the only ':' of a repository is the port of
// its registry host (127.0.0.1:5000/mcp/search).
func hostPortOnly(repo string) bool {
	host, rest, ok := strings.Cut(repo, "/")
	return ok && !strings.ContainsAny(rest, ":@") && !strings.Contains(host, "@")
}

// placeholderVersion is the value version takes when a server's image or
// command is evaluated to find its release source.
const placeholderVersion = "0.0.0-tend.version.placeholder"

// inferRelease finds the release source of a server with a version
// constraint and no release block: its image's repository when the image
// is REPOSITORY:${version}, or its command's program when that path names
// the version.
func (d *decoder) inferRelease(s *Server, at hcl.Attributes, ctx *hcl.EvalContext) {
	if s.Release != nil || s.Constraint == nil {
		return
	}
	probe := ctx.NewChild()
	v := cty.StringVal(placeholderVersion)
	probe.Variables = map[string]cty.Value{
		"version": v,
		"self":    cty.ObjectVal(map[string]cty.Value{"name": cty.StringVal(s.Name), "version": v}),
	}
	if a, ok := at["image"]; ok {
		if img, ok := evalString(a.Expr, probe); ok {
			if repo, ok := strings.CutSuffix(img, ":"+placeholderVersion); ok && !strings.Contains(repo, placeholderVersion) && !strings.Contains(repo, "@") {
				s.Release = &Release{Kind: ReleaseRegistry, Location: repo, Inferred: true, Range: a.Expr.Range()}
				return
			}
		}
	}
	if a, ok := at["command"]; ok {
		val, diags := a.Expr.Value(probe)
		if !diags.HasErrors() && val.IsWhollyKnown() && !val.IsNull() && val.CanIterateElements() && val.LengthInt() > 0 {
			first := val.Index(cty.NumberIntVal(0))
			if first.Type() == cty.String && strings.Count(first.AsString(), placeholderVersion) == 1 {
				loc := strings.Replace(first.AsString(), placeholderVersion, VersionPlaceholder, 1)
				s.Release = &Release{Kind: ReleasePath, Location: loc, Inferred: true, Range: a.Expr.Range()}
				return
			}
		}
	}
	rng := s.VersionRange
	d.errorf(&rng, "No release source",
		"%q is a version constraint, which tend lock resolves against the server's releases, and tend cannot tell where they are: the image is not REPOSITORY:${version} and the command's program does not name ${version}. Add a release block: release { registry = \"HOST/REPOSITORY\" } (or git, path or index), or write an exact version.", s.VersionConstraint)
}

func evalString(e hcl.Expression, ctx *hcl.EvalContext) (string, bool) {
	v, diags := e.Value(ctx)
	if diags.HasErrors() || !v.IsWhollyKnown() || v.IsNull() || v.Type() != cty.String {
		return "", false
	}
	return v.AsString(), true
}

// releasePackage decodes release { package = "pkg:…" }.
func (d *decoder) releasePackage(s *Server, at hcl.Attributes, r *reader) {
	var p string
	if !r.str(at, "package", &p) {
		return
	}
	rng := at["package"].Expr.Range()
	pu, err := ParsePURL(p)
	if err != nil {
		d.errorf(rng.Ptr(), "Invalid package", "%s.", err.Error())
		return
	}
	if pu.Version != "" {
		d.errorf(rng.Ptr(), "Invalid package", "%q names a version: write the package without @VERSION; tend compares the server's version.", p)
		return
	}
	s.Package, s.PackageRange = p, rng
}

// inferPackage names the package of a server with an image and no
// release { package }: pkg:oci/NAME?repository_url=REPOSITORY.
func (d *decoder) inferPackage(s *Server) {
	if s.Package != "" || s.Image == "" {
		return
	}
	if p, ok := ImagePURL(s.Image); ok {
		s.Package = p.String()
	}
}

// pinLocked pins a server whose version comes from the lock file to the
// locked digest: an image of the locked repository gets @sha256:… (the
// docker and kubernetes providers then run exactly the locked manifest,
// whatever the tag points to now), and a command that starts the locked
// build gets BuildDigest (the process and systemd providers check the
// build's sha256 before they start it).
func (d *decoder) pinLocked(s *Server) {
	ls := d.lockedFrom(s)
	if ls == nil || s.Release == nil || ls.Source != s.Release.String() || !strings.HasPrefix(ls.Digest, "sha256:") {
		return
	}
	s.Locked = ls
	switch s.Release.Kind {
	case ReleaseRegistry:
		if s.Image != "" && !strings.Contains(s.Image, "@") && ImageRepository(s.Image) == s.Release.Location {
			s.Image += "@" + ls.Digest
		}
	case ReleasePath:
		if len(s.Command) == 0 || s.Command[0].IsSensitive() || !s.Command[0].IsKnown() {
			return
		}
		prog := s.Command[0].Reveal()
		for _, tag := range []string{ls.Version, "v" + ls.Version} {
			if prog == strings.Replace(s.Release.Location, VersionPlaceholder, tag, 1) {
				s.BuildDigest = ls.Digest
			}
		}
	}
}
