package versions

import (
	"context"
	"fmt"
	"sort"

	"github.com/Masterminds/semver/v3"

	"github.com/tendhq/tend/spec"
)

// PolicyAllows reports whether an update policy lets a server move from
// the locked version to v: patch keeps MAJOR.MINOR, minor keeps MAJOR,
// major takes any newer release, none none. It never allows a downgrade.
// The constraint and the pins still apply on top.
func PolicyAllows(policy string, from, v *semver.Version) bool {
	if v.LessThan(from) {
		return false
	}
	switch policy {
	case spec.PolicyPatch:
		return v.Major() == from.Major() && v.Minor() == from.Minor()
	case spec.PolicyMinor:
		return v.Major() == from.Major()
	case spec.PolicyMajor:
		return true
	}
	return v.Equal(from)
}

// Available is what an update found for one server.
type Available struct {
	Server     string `json:"server"`
	Constraint string `json:"constraint"`
	Policy     string `json:"policy"`
	Locked     string `json:"locked"`
	// To is the release the policy takes (Locked when it takes none).
	To   string `json:"to,omitempty"`
	Bump string `json:"bump,omitempty"` // Locked → To: patch, minor, major, prerelease; "" for none
	// Allowed is the newest release the constraint and the pins allow,
	// policy aside; NewerBump is the step Locked → Allowed.
	Allowed   string `json:"allowed,omitempty"`
	NewerBump string `json:"newer_bump,omitempty"`
	// HeldBack says why Allowed is not taken: the policy, or a pin
	// (which holds even Allowed below what the constraint alone allows).
	HeldBack string `json:"held_back,omitempty"`
	Digest   string `json:"digest,omitempty"` // of To, when it moves
	Error    string `json:"error,omitempty"`  // the source could not be read, or the lock entry is stale
}

// Moves reports whether the update moves the server.
func (a Available) Moves() bool { return a.Error == "" && a.To != "" && a.To != a.Locked }

// Update resolves each server of policies (server → policy) to the newest
// release its constraint, every requires pin on it and its policy allow,
// starting from the version old locks. It returns the lock with those
// servers moved (every other entry as it was) and what it found per
// server, sorted by name. A server that cannot be resolved keeps its
// entry and says why in Error.
func Update(ctx context.Context, res *Resolver, cfg *spec.Config, old *spec.Lock, policies map[string]string) (*spec.Lock, []Available) {
	pins := PinsOn(cfg)
	out := &spec.Lock{Servers: map[string]*spec.LockedServer{}}
	if old != nil {
		out.Filename = old.Filename
		for n, ls := range old.Servers {
			c := *ls
			out.Servers[n] = &c
		}
	}
	names := make([]string, 0, len(policies))
	for n := range policies {
		names = append(names, n)
	}
	sort.Strings(names)
	var found []Available
	for _, n := range names {
		a := updateOne(ctx, res, cfg.Servers[n], out.Servers[n], policies[n], pins[n])
		a.Server = n
		if a.Moves() {
			e := out.Servers[n]
			e.Version, e.Digest = a.To, a.Digest
		}
		found = append(found, a)
	}
	return out, found
}

func updateOne(ctx context.Context, res *Resolver, s *spec.Server, ls *spec.LockedServer, policy string, pins []Pin) Available {
	a := Available{Policy: policy}
	switch {
	case s == nil || s.Constraint == nil || s.Release == nil:
		a.Error = "no version constraint with a release source"
		return a
	case ls == nil:
		a.Constraint, a.Error = s.VersionConstraint, "not in the lock file: run tend lock"
		return a
	}
	a.Constraint, a.Locked = s.VersionConstraint, ls.Version
	from, err := semver.StrictNewVersion(ls.Version)
	switch {
	case err != nil:
		a.Error = fmt.Sprintf("locked version %q is not a version", ls.Version)
		return a
	case ls.Constraint != s.VersionConstraint || ls.Source != s.Release.String():
		a.Error = "the lock entry is stale (another constraint or release source): run tend lock"
		return a
	}
	rs, _, err := res.Releases(ctx, s.Release)
	if err != nil {
		a.Error = redact(err.Error())
		return a
	}
	newest, nerr := Resolve(s.Constraint, s.VersionConstraint, pins, rs)
	if nerr == nil {
		a.Allowed = newest.Release.Version.String()
		if b := Bump(from, newest.Release.Version); b != "none" && b != "downgrade" {
			a.NewerBump = b
		}
	}
	var within []Release
	for _, r := range rs {
		if PolicyAllows(policy, from, r.Version) {
			within = append(within, r)
		}
	}
	a.To = a.Locked
	if got, err := Resolve(s.Constraint, s.VersionConstraint, pins, within); err == nil && got.Release.Version.GreaterThan(from) {
		a.To = got.Release.Version.String()
		a.Bump = Bump(from, got.Release.Version)
		a.Digest, err = res.Digest(ctx, s.Release, got.Release)
		if err != nil {
			a.To, a.Bump, a.Error = a.Locked, "", fmt.Sprintf("release %s: %s", got.Release.Tag, redact(err.Error()))
			return a
		}
	}
	switch {
	case a.Allowed != "" && a.Allowed != a.To:
		a.HeldBack = fmt.Sprintf("%s is allowed by the constraint, and the policy %q takes %s steps at most", a.Allowed, policy, policyStep(policy))
	case nerr == nil && len(newest.HeldBy) > 0:
		p := newest.HeldBy[0]
		a.HeldBack = fmt.Sprintf("%s is newer, and server %q requires %q", newest.Newest.Version, p.Server, p.Text)
	}
	return a
}

func policyStep(policy string) string {
	if policy == spec.PolicyNone {
		return "no"
	}
	return policy
}
