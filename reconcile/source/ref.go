package source

import (
	"fmt"
	"strings"

	"github.com/Masterminds/semver/v3"
	"github.com/go-git/go-git/v5/plumbing"
)

// The kinds of Ref.
const (
	KindBranch = "branch"
	KindTag    = "tag"
	KindSemver = "semver"
	KindCommit = "commit"
)

// Ref says what to check out: a branch ("main" or "branch:main"), a tag
// ("tag:v1.2.0"), the newest tag matching a semver range
// ("semver:>=1.2.0 <2.0.0"; tags may carry a "v" prefix) or a commit
// ("commit:<40 hex>").
//
// For semver, a tag counts when its name, less one leading "v", is a strict
// semantic version (MAJOR.MINOR.PATCH[-pre][+build]); prereleases match only
// a range that names a prerelease (Masterminds/semver rules). Of "v1.2.0"
// and "1.2.0" both present, "v1.2.0" is taken.
type Ref struct{ Kind, Name string }

const refSyntax = `want "BRANCH", "branch:BRANCH", "tag:TAG", "semver:RANGE" or "commit:<40 hex>"`

// ParseRef parses a ref as written in configuration. A string without a
// "kind:" prefix is a branch; "refs/heads/X" and "refs/tags/X" are accepted
// too. The error says what is wrong with it.
func ParseRef(s string) (Ref, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Ref{}, fmt.Errorf("source: empty ref; %s", refSyntax)
	}
	var r Ref
	switch kind, name, ok := strings.Cut(s, ":"); {
	case ok:
		// ':' is never part of a branch or tag name, so the prefix is a kind.
		r = Ref{Kind: strings.ToLower(strings.TrimSpace(kind)), Name: strings.TrimSpace(name)}
	case strings.HasPrefix(s, "refs/heads/"):
		r = Ref{Kind: KindBranch, Name: strings.TrimPrefix(s, "refs/heads/")}
	case strings.HasPrefix(s, "refs/tags/"):
		r = Ref{Kind: KindTag, Name: strings.TrimPrefix(s, "refs/tags/")}
	default:
		r = Ref{Kind: KindBranch, Name: s}
	}
	if err := r.validate(); err != nil {
		return Ref{}, fmt.Errorf("source: invalid ref %q: %w", s, err)
	}
	if r.Kind == KindCommit {
		r.Name = strings.ToLower(r.Name)
	}
	return r, nil
}

// String returns the canonical form, "kind:name", which ParseRef reads back.
func (r Ref) String() string {
	if r.Kind == "" && r.Name == "" {
		return ""
	}
	return r.Kind + ":" + r.Name
}

// IsZero reports whether r is the zero Ref.
func (r Ref) IsZero() bool { return r == Ref{} }

func (r Ref) validate() error {
	switch r.Kind {
	case KindBranch, KindTag, KindSemver, KindCommit:
	case "":
		return fmt.Errorf("no kind; %s", refSyntax)
	default:
		return fmt.Errorf("unknown kind %q; %s", r.Kind, refSyntax)
	}
	if r.Name == "" {
		return fmt.Errorf("%s: missing name; %s", r.Kind, refSyntax)
	}
	switch r.Kind {
	case KindBranch:
		if plumbing.NewBranchReferenceName(r.Name).Validate() != nil || strings.ContainsAny(r.Name, " \t\n") {
			return fmt.Errorf("%q is not a valid git branch name", r.Name)
		}
	case KindTag:
		if plumbing.NewTagReferenceName(r.Name).Validate() != nil || strings.ContainsAny(r.Name, " \t\n") {
			return fmt.Errorf("%q is not a valid git tag name", r.Name)
		}
	case KindSemver:
		if _, err := semver.NewConstraint(r.Name); err != nil {
			return fmt.Errorf("%q is not a valid semver range (%v); example: semver:>=1.2.0 <2.0.0", r.Name, err)
		}
	case KindCommit:
		if !isHexHash(r.Name) {
			return fmt.Errorf("%q is not a full commit hash: want 40 hexadecimal digits", r.Name)
		}
	}
	return nil
}

func isHexHash(s string) bool {
	if len(s) != 40 {
		return false
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}
