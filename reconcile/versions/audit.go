package versions

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/Masterminds/semver/v3"

	"github.com/tendhq/tend/spec"
)

// Finding is one advisory that affects a version of a server.
type Finding struct {
	Server  string `json:"server"`
	Package string `json:"package"`
	Version string `json:"version"`
	// In says which of the server's versions it is: "running" (the last
	// verified apply), "desired" (the locked version of a constraint, or
	// the exact version), or both.
	In       []string   `json:"in"`
	ID       string     `json:"id"`
	Aliases  []string   `json:"aliases,omitempty"`
	Severity []Severity `json:"severity,omitempty"`
	Summary  string     `json:"summary,omitempty"`
	// Constraint is the server's version constraint; empty for an exact
	// version.
	Constraint string `json:"constraint,omitempty"`
	// Fixed is the first fixed version above Version that the server's
	// constraint allows (any, for an exact version); empty when none is.
	Fixed string `json:"fixed,omitempty"`
	// FixedNote says why Fixed is empty: no fixed version, or none that
	// the constraint allows (naming the fixes).
	FixedNote string `json:"fixed_note,omitempty"`
	Where     string `json:"where"` // the advisory's file (or URL) and line:column
}

// Severities is the advisory's severity as given: its severity list (the
// affected package's own, when it has one), then a "severity" of its
// database_specific or the package's ecosystem_specific.
func severities(a *Advisory, af *Affected) []Severity {
	out := append([]Severity(nil), a.Severity...)
	if len(af.Severity) > 0 {
		out = append([]Severity(nil), af.Severity...)
	}
	for _, raw := range []json.RawMessage{a.DatabaseSpecific, af.DatabaseSpecific, af.EcosystemSpecific} {
		var ds struct {
			Severity any `json:"severity"`
		}
		if len(raw) > 0 && json.Unmarshal(raw, &ds) == nil {
			if s, ok := ds.Severity.(string); ok && s != "" {
				out = append(out, Severity{Type: "database_specific", Score: s})
			}
		}
	}
	return out
}

// Check returns the findings of one version of a package: every advisory
// with an affected entry for the package whose ranges or versions hold the
// version. constraint (nil: an exact version) picks the fixed version to
// suggest. An affected entry whose versions tend cannot compare is an
// error naming the advisory.
func (db *Advisories) Check(pkg spec.PURL, version *semver.Version, constraint *semver.Constraints, constraintText string) ([]Finding, []error) {
	var out []Finding
	var errs []error
	for _, a := range db.candidates(pkg) {
		var hit *Affected
		var fixes []*semver.Version
		for i := range a.Affected {
			af := &a.Affected[i]
			if !af.Package.Matches(pkg) {
				continue
			}
			in, err := af.Affects(version)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: advisory %s: %v", a.Where, a.ID, err))
				continue
			}
			if in && hit == nil {
				hit = af
			}
			fixes = append(fixes, af.fixes()...)
		}
		if hit == nil {
			continue
		}
		f := Finding{Package: pkg.String(), Version: version.String(), ID: a.ID, Aliases: a.Aliases,
			Severity: severities(a, hit), Summary: a.Summary, Constraint: constraintText, Where: a.Where}
		f.Fixed, f.FixedNote = firstFixed(a, pkg, version, fixes, constraint, constraintText)
		out = append(out, f)
	}
	return out, errs
}

// firstFixed is the lowest fixed version above v that the constraint
// allows and that the advisory does not affect.
func firstFixed(a *Advisory, pkg spec.PURL, v *semver.Version, fixes []*semver.Version, c *semver.Constraints, text string) (string, string) {
	sort.Slice(fixes, func(i, j int) bool { return fixes[i].LessThan(fixes[j]) })
	var above []string
	for _, f := range fixes {
		if !f.GreaterThan(v) {
			continue
		}
		above = append(above, f.String())
		if c != nil && !c.Check(f) {
			continue
		}
		if affectedBy(a, pkg, f) {
			continue
		}
		return f.String(), ""
	}
	switch {
	case len(above) == 0:
		return "", "no fixed version is known"
	case c != nil:
		return "", fmt.Sprintf("no version that %q allows is fixed (fixed in %s)", text, strings.Join(above, ", "))
	}
	return "", "every fixed version is affected again"
}

func affectedBy(a *Advisory, pkg spec.PURL, v *semver.Version) bool {
	for i := range a.Affected {
		if a.Affected[i].Package.Matches(pkg) {
			if in, err := a.Affected[i].Affects(v); err == nil && in {
				return true
			}
		}
	}
	return false
}

// AuditInput is what tend audit checks.
type AuditInput struct {
	Config     *spec.Config
	Running    map[string]string // server → version of its last verified apply
	Advisories *Advisories
}

// Audit checks every server that names a package (release { package }, or
// read from its image): its running version and its desired one (locked
// or exact). The findings are sorted by server, version and id.
func Audit(in AuditInput) ([]Finding, []error) {
	var out []Finding
	var errs []error
	names := make([]string, 0, len(in.Config.Servers))
	for n := range in.Config.Servers {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		s := in.Config.Servers[n]
		if s.Package == "" {
			continue
		}
		pkg, err := spec.ParsePURL(s.Package)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %v", n, err))
			continue
		}
		which := map[string][]string{}
		var order []string
		add := func(v, in string) {
			if v == "" {
				return
			}
			if _, ok := which[v]; !ok {
				order = append(order, v)
			}
			which[v] = append(which[v], in)
		}
		add(in.Running[n], "running")
		add(s.Version, "desired")
		for _, vs := range order {
			v, err := semver.NewVersion(vs)
			if err != nil {
				continue // not a version: nothing an advisory's range can hold
			}
			fs, es := in.Advisories.Check(pkg, v, s.Constraint, s.VersionConstraint)
			errs = append(errs, es...)
			for _, f := range fs {
				f.Server, f.In = n, which[vs]
				out = append(out, f)
			}
		}
	}
	return out, errs
}
