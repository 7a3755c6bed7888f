package versions

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/Masterminds/semver/v3"
	"github.com/hashicorp/hcl/v2"

	"github.com/tendhq/tend/spec"
)

// LockRequest says what tend lock does.
type LockRequest struct {
	Config *spec.Config // loaded Unlocked: constraints unresolved
	Old    *spec.Lock   // the lock file as it is, nil when there is none
	// Upgrade resolves again the servers it names (all when All), to the
	// newest releases allowed; the others keep their locked versions while
	// the constraint, the source and the pins still allow them.
	Upgrade map[string]bool
	All     bool
	// Parallelism bounds the sources listed at once (default 16).
	Parallelism int
}

// LockChange is one server whose locked version changed.
type LockChange struct {
	Server   string `json:"server"`
	From     string `json:"from,omitempty"` // empty: newly locked
	To       string `json:"to"`
	Digest   string `json:"digest"`
	HeldBack string `json:"held_back,omitempty"` // the newest allowed but for a pin, and by which
}

// Lock resolves every server whose version is a constraint and returns the
// new lock, what changed, and the diagnostics (at the version attribute,
// naming the pins and the source) of the servers it could not resolve.
func Lock(ctx context.Context, res *Resolver, req LockRequest) (*spec.Lock, []LockChange, hcl.Diagnostics) {
	cfg := req.Config
	pins := PinsOn(cfg)
	names := make([]string, 0, len(cfg.Servers))
	for n, s := range cfg.Servers {
		if s.Constraint != nil && s.Release != nil {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	out := &spec.Lock{Servers: map[string]*spec.LockedServer{}}
	if req.Old != nil {
		out.Filename = req.Old.Filename
	}
	type result struct {
		ls     *spec.LockedServer
		change *LockChange
		diag   *hcl.Diagnostic
	}
	results := make([]result, len(names))
	par := req.Parallelism
	if par <= 0 {
		par = 16
	}
	sem := make(chan struct{}, par)
	var wg sync.WaitGroup
	for i, n := range names {
		s := cfg.Servers[n]
		if old := keep(req, s, pins[n]); old != nil {
			results[i].ls = old
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			ls, held, err := lockOne(ctx, res, s, pins[n])
			if err != nil {
				results[i].diag = lockDiag(s, err)
				return
			}
			results[i].ls = ls
			from, fromDigest := "", ""
			if req.Old != nil && req.Old.Servers[n] != nil {
				from, fromDigest = req.Old.Servers[n].Version, req.Old.Servers[n].Digest
			}
			if from != ls.Version || fromDigest != ls.Digest {
				results[i].change = &LockChange{Server: n, From: from, To: ls.Version, Digest: ls.Digest, HeldBack: held}
			}
		}()
	}
	wg.Wait()
	var changes []LockChange
	var diags hcl.Diagnostics
	for _, r := range results {
		if r.ls != nil {
			out.Servers[r.ls.Name] = r.ls
		}
		if r.change != nil {
			changes = append(changes, *r.change)
		}
		if r.diag != nil {
			diags = append(diags, r.diag)
		}
	}
	return out, changes, diags
}

// keep returns the old entry of s when it may stay as it is.
func keep(req LockRequest, s *spec.Server, pins []Pin) *spec.LockedServer {
	if req.Old == nil || req.All || req.Upgrade[s.Name] {
		return nil
	}
	old := req.Old.Servers[s.Name]
	if old == nil || old.Constraint != s.VersionConstraint || old.Source != s.Release.String() {
		return nil
	}
	v, err := semver.StrictNewVersion(old.Version)
	if err != nil || !s.Constraint.Check(v) || len(refusing(pins, v)) > 0 {
		return nil
	}
	kept := *old
	return &kept
}

func lockOne(ctx context.Context, res *Resolver, s *spec.Server, pins []Pin) (*spec.LockedServer, string, error) {
	rs, _, err := res.Releases(ctx, s.Release)
	if err != nil {
		return nil, "", err
	}
	r, err := Resolve(s.Constraint, s.VersionConstraint, pins, rs)
	if err != nil {
		return nil, "", err
	}
	digest, err := res.Digest(ctx, s.Release, r.Release)
	if err != nil {
		return nil, "", fmt.Errorf("release %s: %w", r.Release.Tag, err)
	}
	held := ""
	if len(r.HeldBy) > 0 {
		held = fmt.Sprintf("%s is newer, and server %q requires %q", r.Newest.Version, r.HeldBy[0].Server, r.HeldBy[0].Text)
	}
	return &spec.LockedServer{
		Name: s.Name, Constraint: s.VersionConstraint, Version: r.Release.Version.String(),
		Digest: digest, Source: s.Release.String(),
	}, held, nil
}

// lockDiag reports a server that could not be resolved, at its version
// attribute; a pin conflict names the pins' positions too.
func lockDiag(s *spec.Server, err error) *hcl.Diagnostic {
	rng := s.VersionRange
	d := &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Cannot resolve version", Subject: &rng}
	var pc *PinConflictError
	switch {
	case errors.As(err, &pc):
		d.Summary = "Version constraint and pins disagree"
		d.Detail = fmt.Sprintf("Server %q (version %q, at %s): %v.", s.Name, s.VersionConstraint, s.VersionRange, err)
	default:
		d.Detail = fmt.Sprintf("Server %q, version %q, from %s: %v.", s.Name, s.VersionConstraint, redact(s.Release.String()), err)
	}
	return d
}

// PinsOn returns, by the server they pin, the requires blocks of every
// server.
func PinsOn(cfg *spec.Config) map[string][]Pin {
	out := map[string][]Pin{}
	for _, s := range cfg.Servers {
		for _, req := range s.Requires {
			if req.Constraint == nil {
				continue
			}
			out[req.Server] = append(out[req.Server], Pin{Server: s.Name, Text: req.Version, Constraint: req.Constraint, Range: req.VersionRange})
		}
	}
	for _, ps := range out {
		sort.Slice(ps, func(i, j int) bool { return ps[i].Server < ps[j].Server })
	}
	return out
}

// Moved is a locked release whose source now gives another digest (a tag
// pushed again), or that the source no longer lists.
type Moved struct {
	Server string `json:"server"`
	Tag    string `json:"tag"`
	Locked string `json:"locked_digest"`
	Now    string `json:"digest,omitempty"` // empty: gone from the source
}

// Check compares each locked release with its source. It returns the
// releases that moved, and an error per source it could not reach.
func Check(ctx context.Context, res *Resolver, cfg *spec.Config, lk *spec.Lock) ([]Moved, []error) {
	var moved []Moved
	var errs []error
	for _, n := range sortedNames(lk) {
		ls := lk.Servers[n]
		s := cfg.Servers[n]
		if s == nil || s.Release == nil || s.Release.String() != ls.Source {
			continue // validate reports these
		}
		rs, _, err := res.Releases(ctx, s.Release)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s, from %s: %w", n, redact(s.Release.String()), err))
			continue
		}
		var found *Release
		for i := range rs {
			if rs[i].Version.String() == ls.Version {
				found = &rs[i]
				break
			}
		}
		if found == nil {
			moved = append(moved, Moved{Server: n, Tag: ls.Version, Locked: ls.Digest})
			continue
		}
		d, err := res.Digest(ctx, s.Release, *found)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", n, err))
			continue
		}
		if d != ls.Digest {
			moved = append(moved, Moved{Server: n, Tag: found.Tag, Locked: ls.Digest, Now: d})
		}
	}
	return moved, errs
}

func sortedNames(lk *spec.Lock) []string {
	out := make([]string, 0, len(lk.Servers))
	for n := range lk.Servers {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
