package versions

import (
	"fmt"
	"sort"
	"strings"

	"github.com/Masterminds/semver/v3"
	"github.com/hashicorp/hcl/v2"
)

// Release is one release of a server: a version, the tag (or file name, or
// index entry) it was read from, and its digest when known.
type Release struct {
	Version *semver.Version
	Tag     string
	Digest  string // sha256:… or sha1:…; empty until Source.Digest gives it
}

// ParseTag reads a tag as a release: MAJOR.MINOR.PATCH with an optional
// leading v, a prerelease and build metadata. Anything else ("latest",
// "1.4", "main") is not a release, and ok is false.
func ParseTag(tag string) (Release, bool) {
	v, err := semver.StrictNewVersion(strings.TrimPrefix(tag, "v"))
	if err != nil {
		return Release{}, false
	}
	return Release{Version: v, Tag: tag}, true
}

// FromTags keeps the tags that are releases, newest first.
func FromTags(tags []string) []Release {
	var out []Release
	for _, t := range tags {
		if r, ok := ParseTag(t); ok {
			out = append(out, r)
		}
	}
	SortNewestFirst(out)
	return out
}

// SortNewestFirst sorts releases by version, newest first; of two tags of
// one version (1.4.2 and v1.4.2), the one without v comes first.
func SortNewestFirst(rs []Release) {
	sort.SliceStable(rs, func(i, j int) bool {
		if c := rs[i].Version.Compare(rs[j].Version); c != 0 {
			return c > 0
		}
		return rs[i].Tag < rs[j].Tag
	})
}

// Pin is a requires block of another server on the server being resolved.
type Pin struct {
	Server     string // the server that holds the pin
	Text       string // its version constraint as written
	Constraint *semver.Constraints
	Range      hcl.Range
}

// Resolution is what Resolve found.
type Resolution struct {
	Release Release  // the newest release the constraint and every pin allow
	Newest  *Release // the newest the constraint allows, pins aside
	Latest  *Release // the newest release at all (prereleases only if the constraint names one)
	HeldBy  []Pin    // the pins that kept Release below Newest
}

// NoReleaseError says that no release satisfies a constraint.
type NoReleaseError struct {
	Constraint string
	Releases   int
	Latest     *Release
}

func (e *NoReleaseError) Error() string {
	if e.Releases == 0 {
		return fmt.Sprintf("the source has no release (no tag is a version MAJOR.MINOR.PATCH), so nothing satisfies %q", e.Constraint)
	}
	return fmt.Sprintf("none of the %d releases satisfies %q (the newest is %s)", e.Releases, e.Constraint, e.Latest.Version)
}

// PinConflictError says that releases satisfy the constraint, but none of
// them every pin.
type PinConflictError struct {
	Constraint string
	Newest     Release
	Pins       []Pin // the pins that refuse the newest release
}

func (e *PinConflictError) Error() string {
	var parts []string
	for _, p := range e.Pins {
		parts = append(parts, fmt.Sprintf("server %q requires %q (at %s)", p.Server, p.Text, p.Range))
	}
	return fmt.Sprintf("no release satisfies both %q and the pins on it: %s; the newest the constraint allows is %s", e.Constraint, strings.Join(parts, ", "), e.Newest.Version)
}

// Resolve picks the newest of rs that satisfies c and every pin. A
// prerelease is taken only when the constraint names one (semver's rule:
// ">= 1.5.0-rc.1" allows 1.5.0-rc.2, "~> 1.4" allows none).
func Resolve(c *semver.Constraints, text string, pins []Pin, rs []Release) (Resolution, error) {
	rs = append([]Release(nil), rs...)
	SortNewestFirst(rs)
	var res Resolution
	for i := range rs {
		r := &rs[i]
		if res.Latest == nil && (r.Version.Prerelease() == "" || c.Check(r.Version)) {
			res.Latest = r
		}
		if !c.Check(r.Version) {
			continue
		}
		if res.Newest == nil {
			res.Newest = r
		}
		if refused := refusing(pins, r.Version); len(refused) == 0 {
			res.Release = *r
			res.HeldBy = refusing(pins, res.Newest.Version)
			return res, nil
		}
	}
	if res.Newest == nil {
		return res, &NoReleaseError{Constraint: text, Releases: len(rs), Latest: res.Latest}
	}
	return res, &PinConflictError{Constraint: text, Newest: *res.Newest, Pins: refusing(pins, res.Newest.Version)}
}

func refusing(pins []Pin, v *semver.Version) []Pin {
	var out []Pin
	for _, p := range pins {
		if p.Constraint != nil && !p.Constraint.Check(v) {
			out = append(out, p)
		}
	}
	return out
}

// Bump names the semver step from one version to another: "major",
// "minor", "patch", "prerelease", "none", or "downgrade".
func Bump(from, to *semver.Version) string {
	switch c := to.Compare(from); {
	case c == 0:
		return "none"
	case c < 0:
		return "downgrade"
	case to.Major() != from.Major():
		return "major"
	case to.Minor() != from.Minor():
		return "minor"
	case to.Patch() != from.Patch():
		return "patch"
	}
	return "prerelease"
}
