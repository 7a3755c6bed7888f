package spec

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/Masterminds/semver/v3"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/zclconf/go-cty/cty"
)

// LockFileName is the lock file of a state repository, at its root. It is
// not a configuration file: a load reads it for the versions of the servers
// whose version is a constraint.
const LockFileName = "tend.lock.hcl"

// lockHeader opens every lock file tend writes.
const lockHeader = `# This file is maintained by "tend lock": it records, for each server whose
# version is a constraint, the release the constraint resolved to. Commit it.
# tend lock -upgrade moves to the newest releases the constraints allow.

`

// Lock is the content of a lock file: the resolved version of each server
// whose version is a constraint.
type Lock struct {
	Filename string
	Servers  map[string]*LockedServer
}

// LockedServer is one server block of a lock file.
type LockedServer struct {
	Name       string `json:"server"`
	Constraint string `json:"constraint"` // the version attribute's text when it was locked
	Version    string `json:"version"`    // the release it resolved to
	Digest     string `json:"digest"`     // sha256:… of the image manifest or the build; sha1:… of a git commit
	Source     string `json:"source"`     // the release source, as Release.String

	DeclRange    hcl.Range `json:"-"`
	VersionRange hcl.Range `json:"-"`
}

var (
	lockSchema       = &hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{{Type: "server", LabelNames: []string{"name"}}}}
	lockServerSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
		{Name: "constraint", Required: true}, {Name: "version", Required: true},
		{Name: "digest", Required: true}, {Name: "source", Required: true},
	}}
	digestRE = regexp.MustCompile(`^(sha256:[0-9a-f]{64}|sha1:[0-9a-f]{40})$`)
)

// ParseLock parses a lock file. Every error has the position of what is
// wrong.
func ParseLock(src []byte, filename string) (*Lock, *hcl.File, hcl.Diagnostics) {
	f, diags := hclsyntax.ParseConfig(src, filename, hcl.InitialPos)
	lk := &Lock{Filename: filename, Servers: map[string]*LockedServer{}}
	if diags.HasErrors() {
		return lk, f, diags
	}
	content, d := f.Body.Content(lockSchema)
	diags = append(diags, d...)
	for _, b := range content.Blocks {
		ls, d := parseLockedServer(b)
		diags = append(diags, d...)
		if ls == nil {
			continue
		}
		if prev, ok := lk.Servers[ls.Name]; ok {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError, Summary: "Duplicate server in the lock file",
				Detail:  fmt.Sprintf("The server %q is locked twice; the first is at %s. Run tend lock to write the lock file again.", ls.Name, prev.DeclRange),
				Subject: b.DefRange.Ptr(),
			})
			continue
		}
		lk.Servers[ls.Name] = ls
	}
	return lk, f, diags
}

func parseLockedServer(b *hcl.Block) (*LockedServer, hcl.Diagnostics) {
	content, diags := b.Body.Content(lockServerSchema)
	if diags.HasErrors() {
		return nil, diags
	}
	ls := &LockedServer{Name: b.Labels[0], DeclRange: b.DefRange}
	if !validName(ls.Name) {
		return nil, append(diags, lockError(b.LabelRanges[0], "Invalid server name", fmt.Sprintf("%q is not a valid server name: %s", ls.Name, nameRule)))
	}
	fields := map[string]*string{"constraint": &ls.Constraint, "version": &ls.Version, "digest": &ls.Digest, "source": &ls.Source}
	for name, dst := range fields {
		a := content.Attributes[name]
		v, d := a.Expr.Value(nil)
		if d.HasErrors() || v.IsNull() || !v.IsKnown() || v.Type() != cty.String {
			diags = append(diags, lockError(a.Expr.Range(), "Invalid lock file value", fmt.Sprintf("%s is a quoted string in a lock file.", name)))
			continue
		}
		*dst = v.AsString()
	}
	if diags.HasErrors() {
		return nil, diags
	}
	ls.VersionRange = content.Attributes["version"].Expr.Range()
	if _, err := semver.StrictNewVersion(ls.Version); err != nil {
		diags = append(diags, lockError(ls.VersionRange, "Invalid locked version", fmt.Sprintf("%q is not a version (MAJOR.MINOR.PATCH).", ls.Version)))
	}
	if _, err := ParseConstraint(ls.Constraint); err != nil {
		diags = append(diags, lockError(content.Attributes["constraint"].Expr.Range(), "Invalid locked constraint", fmt.Sprintf("%q is not a version constraint.", ls.Constraint)))
	}
	if !digestRE.MatchString(ls.Digest) {
		diags = append(diags, lockError(content.Attributes["digest"].Expr.Range(), "Invalid digest",
			fmt.Sprintf("%q is not a digest: sha256: and 64 hex digits (an image or a build), or sha1: and 40 (a git commit).", ls.Digest)))
	}
	if kind, loc, ok := strings.Cut(ls.Source, ":"); !ok || loc == "" || !contains([]string{ReleaseRegistry, ReleaseGit, ReleasePath, ReleaseIndex}, kind) {
		diags = append(diags, lockError(content.Attributes["source"].Expr.Range(), "Invalid release source",
			fmt.Sprintf("%q is not a release source: registry:, git:, path: or index: and its location.", ls.Source)))
	}
	if diags.HasErrors() {
		return nil, diags
	}
	return ls, diags
}

func lockError(rng hcl.Range, summary, detail string) *hcl.Diagnostic {
	return &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: detail, Subject: rng.Ptr()}
}

// Bytes formats the lock file: a header, then one block per server sorted
// by name, each with its attributes in a fixed order.
func (lk *Lock) Bytes() []byte {
	f := hclwrite.NewEmptyFile()
	body := f.Body()
	names := sortedKeys(lk.Servers)
	for i, n := range names {
		ls := lk.Servers[n]
		if i > 0 {
			body.AppendNewline()
		}
		b := body.AppendNewBlock("server", []string{n}).Body()
		b.SetAttributeValue("constraint", cty.StringVal(ls.Constraint))
		b.SetAttributeValue("version", cty.StringVal(ls.Version))
		b.SetAttributeValue("digest", cty.StringVal(ls.Digest))
		b.SetAttributeValue("source", cty.StringVal(ls.Source))
	}
	return append([]byte(lockHeader), hclwrite.Format(f.Bytes())...)
}
