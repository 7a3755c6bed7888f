package contract

import (
	"fmt"
	"strings"

	"github.com/Masterminds/semver/v3"
)

// Bumps: how a version changed. See Bump.
const (
	BumpMajor      = "major"
	BumpMinor      = "minor"
	BumpPatch      = "patch"
	BumpPrerelease = "prerelease" // only the pre-release part changed
	BumpNone       = "none"       // the same version (build metadata aside)
	BumpDowngrade  = "downgrade"
	BumpUnknown    = "unknown" // a version is not semver
)

// Contract modes (spec.Server.Contract).
const (
	ModeEnforce = "enforce"
	ModeWarn    = "warn"
	ModeOff     = "off"
)

// Bump classifies the change from oldVersion to newVersion. In 0.y.z, the
// leftmost non-zero part counts as the major one (0.4.1 → 0.5.0 is major,
// 0.4.1 → 0.4.2 minor, 0.0.3 → 0.0.4 major); see the package documentation.
func Bump(oldVersion, newVersion string) string {
	o, err1 := semver.NewVersion(oldVersion)
	n, err2 := semver.NewVersion(newVersion)
	if err1 != nil || err2 != nil {
		return BumpUnknown
	}
	switch c := n.Compare(o); {
	case c == 0:
		return BumpNone
	case c < 0:
		return BumpDowngrade
	}
	switch {
	case n.Major() != o.Major():
		return BumpMajor
	case o.Major() == 0 && n.Minor() != o.Minor():
		return BumpMajor
	case o.Major() == 0 && o.Minor() == 0 && n.Patch() != o.Patch():
		return BumpMajor
	case o.Major() == 0 && n.Patch() != o.Patch():
		return BumpMinor
	case n.Minor() != o.Minor():
		return BumpMinor
	case n.Patch() != o.Patch():
		return BumpPatch
	}
	return BumpPrerelease
}

// Verdict is what a contract check concludes about a new revision.
type Verdict struct {
	// Fail is set when verification must fail: breaking changes under
	// contract = "enforce" and a bump that is not major.
	Fail bool `json:"fail"`
	// Warn is set when breaking changes are let through with a warning:
	// contract = "warn", or a downgrade.
	Warn bool `json:"warn"`
	// Note is set when nothing fails or warns but the report is worth
	// saying: the client capabilities changed, so the contracts were not
	// compared (Diff.Capabilities).
	Note bool `json:"note,omitempty"`
	// Bump is Bump(oldVersion, newVersion).
	Bump string `json:"bump"`
	// Report says what changed, for a person, in several lines. It is empty
	// under contract = "off".
	Report string `json:"report,omitempty"`
}

// Evaluate judges the changes d from oldVersion to newVersion under a
// contract mode: ModeEnforce, ModeWarn or ModeOff. An empty mode is
// ModeWarn (the default of a server); an unknown one is ModeEnforce.
func Evaluate(mode, oldVersion, newVersion string, d Diff) Verdict {
	bump := Bump(oldVersion, newVersion)
	v := Verdict{Bump: bump}
	if mode == ModeOff {
		return v
	}
	if mode == "" {
		mode = ModeWarn
	}
	if d.Capabilities != nil {
		v.Note = true
		v.Report = capabilitiesReport(oldVersion, newVersion, bump, d)
		return v
	}
	breaks := len(d.Breaking) > 0
	allowed := bump == BumpMajor
	switch {
	case !breaks || allowed:
	case bump == BumpDowngrade || mode == ModeWarn:
		v.Warn = true
	default:
		v.Fail = true
	}
	v.Report = report(oldVersion, newVersion, bump, d, v)
	return v
}

// report writes the text of a verdict:
//
//	contract: 1.4.0 -> 1.5.0 is a minor bump, but 2 changes break clients:
//	  - tool "delete_note" was removed
//	  - parameter "body" of tool "add_note" is now required
//	additions:
//	  - tool "count_notes" was added
//	verification fails (contract = "enforce"): release these changes as 2.0.0 or keep them compatible;
//	contract = "warn" would let them through with a warning
func report(oldVersion, newVersion, bump string, d Diff, v Verdict) string {
	var b strings.Builder
	fmt.Fprintf(&b, "contract: %s -> %s %s", orNone(oldVersion), orNone(newVersion), bumpText(oldVersion, newVersion, bump))
	n := len(d.Breaking)
	switch {
	case d.IsEmpty():
		b.WriteString("; the tools, resources and prompts did not change\n")
		return b.String()
	case n == 0:
		b.WriteString("; no change breaks clients\n")
	case bump == BumpMajor:
		fmt.Fprintf(&b, "; %s, as a major release may:\n", breakCount(n))
	case bump == BumpDowngrade:
		fmt.Fprintf(&b, "; %s (a downgrade is taken as deliberate: a warning, not a failure):\n", breakCount(n))
	default:
		fmt.Fprintf(&b, ", but %s:\n", breakCount(n))
	}
	for _, c := range d.Breaking {
		fmt.Fprintf(&b, "  - %s\n", c.Detail)
	}
	if len(d.Additions) > 0 {
		b.WriteString("additions:\n")
		for _, c := range d.Additions {
			fmt.Fprintf(&b, "  - %s\n", c.Detail)
		}
	}
	switch {
	case v.Fail:
		b.WriteString(`verification fails (contract = "enforce"): `)
		if next := nextMajor(oldVersion); next != "" {
			fmt.Fprintf(&b, "release these changes as %s or keep them compatible;\n", next)
		} else {
			b.WriteString("release these changes under a major version or keep them compatible;\n")
		}
		b.WriteString("contract = \"warn\" would let them through with a warning\n")
	case v.Warn && bump != BumpDowngrade:
		b.WriteString(`contract = "warn": verification goes on; clients of ` + orNone(oldVersion) + " may fail\n")
	case n == 0 && len(d.Additions) > 0 && (bump == BumpPatch || bump == BumpNone):
		b.WriteString("note: semver asks for at least a minor bump for additions\n")
	}
	return b.String()
}

// capabilitiesReport writes the text of a verdict on contracts fetched
// under different client capabilities:
//
//	contract: 1.4.0 -> 1.5.0 is a minor bump; the client capabilities declared changed from roots to roots, sampling,
//	so the contracts are not compared, and this one is recorded for the next revision to be compared with;
//	differences, not judged (they may come from the capabilities):
//	  - tool "summarize" was added
func capabilitiesReport(oldVersion, newVersion, bump string, d Diff) string {
	var b strings.Builder
	fmt.Fprintf(&b, "contract: %s -> %s %s; the client capabilities declared changed from %s to %s,\n",
		orNone(oldVersion), orNone(newVersion), bumpText(oldVersion, newVersion, bump),
		capabilityText(d.Capabilities.Old), capabilityText(d.Capabilities.New))
	b.WriteString("so the contracts are not compared, and this one is recorded for the next revision to be compared with")
	if len(d.Unjudged) == 0 {
		b.WriteString("; the tools, resources and prompts did not change\n")
		return b.String()
	}
	b.WriteString(";\ndifferences, not judged (they may come from the capabilities):\n")
	for _, c := range d.Unjudged {
		fmt.Fprintf(&b, "  - %s\n", c.Detail)
	}
	return b.String()
}

// capabilityText renders a list of capabilities: "roots, sampling", or
// "none".
func capabilityText(caps []string) string {
	if len(caps) == 0 {
		return "none"
	}
	return strings.Join(caps, ", ")
}

func orNone(v string) string {
	if v == "" {
		return "(no version)"
	}
	return v
}

func breakCount(n int) string {
	if n == 1 {
		return "1 change breaks clients"
	}
	return fmt.Sprintf("%d changes break clients", n)
}

// bumpText says what kind of bump this is: "is a minor bump".
func bumpText(oldVersion, newVersion, bump string) string {
	switch bump {
	case BumpMajor:
		if o, err := semver.NewVersion(oldVersion); err == nil && o.Major() == 0 {
			if n, err := semver.NewVersion(newVersion); err == nil && n.Major() == 0 {
				return "is a major bump (in 0.x, the leftmost non-zero part is the major one)"
			}
		}
		return "is a major bump"
	case BumpMinor, BumpPatch:
		return "is a " + bump + " bump"
	case BumpPrerelease:
		return "changes only the pre-release"
	case BumpNone:
		return "keeps the version"
	case BumpDowngrade:
		return "is a downgrade"
	}
	return "is not a semantic version change, so tend cannot tell whether it is major"
}

// nextMajor is the first version after v that may break its clients:
// 2.0.0 after 1.4.0, 0.5.0 after 0.4.1, 0.0.4 after 0.0.3.
func nextMajor(v string) string {
	o, err := semver.NewVersion(v)
	if err != nil {
		return ""
	}
	var n semver.Version
	switch {
	case o.Major() > 0:
		n = o.IncMajor()
	case o.Minor() > 0:
		n = o.IncMinor()
	default:
		n = o.IncPatch()
	}
	n, _ = n.SetPrerelease("")
	return n.String()
}
