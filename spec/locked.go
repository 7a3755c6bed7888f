package spec

import (
	"fmt"

	"github.com/Masterminds/semver/v3"
	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// lockedVersion gives a server whose version is a constraint the version
// the lock file records for it, or reports at the version attribute why it
// cannot: no lock file, no entry, an entry for another constraint (stale),
// or a locked version the constraint does not allow.
func (d *decoder) lockedVersion(s *Server, a *hcl.Attribute, r *reader) cty.Value {
	d.fe.deps.add(dep{kind: depLock, name: s.Name, val: d.readLocked(s.Name)})
	ls, why := d.lockEntry(s)
	if why != "" {
		r.attrError(a, "Version not locked", "%s", why)
		return cty.UnknownVal(cty.String)
	}
	s.Version = ls.Version
	return cty.StringVal(ls.Version)
}

func (d *decoder) lockEntry(s *Server) (*LockedServer, string) {
	text := s.VersionConstraint
	if d.lock == nil {
		if d.lockBroken {
			return nil, fmt.Sprintf("%q is a version constraint, and the lock file %s cannot be read (see its errors): fix it or run tend lock to write it again.", text, LockFileName)
		}
		return nil, fmt.Sprintf("%q is a version constraint, and the repository has no lock file (%s): run tend lock to resolve it to a release and record it.", text, LockFileName)
	}
	ls, ok := d.lock.Servers[s.Name]
	if !ok {
		return nil, fmt.Sprintf("%q is a version constraint, and the lock file %s has no version for server %q: run tend lock.", text, d.lock.Filename, s.Name)
	}
	if ls.Constraint != text {
		return nil, fmt.Sprintf("The lock file (%s) resolved %q for server %q, and its version is now %q: the lock is stale; run tend lock to resolve the new constraint.", ls.DeclRange, ls.Constraint, s.Name, text)
	}
	v, err := semver.StrictNewVersion(ls.Version)
	if err != nil || !s.Constraint.Check(v) {
		return nil, fmt.Sprintf("The locked version %s of server %q (%s) does not satisfy %q: run tend lock.", ls.Version, s.Name, ls.VersionRange, text)
	}
	return ls, ""
}

// readLocked is what the lock file says of a server, for the cache.
func (d *decoder) readLocked(name string) string {
	if d.lock == nil {
		return fmt.Sprintf("no lock, broken %v", d.lockBroken)
	}
	ls, ok := d.lock.Servers[name]
	if !ok {
		return "no entry"
	}
	return ls.Constraint + "|" + ls.Version + "|" + ls.Digest + "|" + ls.Source
}

// constraintRules refuses a version constraint where no release can be
// taken by version alone (an artifact block checks one build by its
// sha256), and a locked version taken from another release source than
// the server's.
func (d *decoder) constraintRules(s *Server) {
	if s.Constraint == nil {
		return
	}
	if ls := d.lockedFrom(s); ls != nil && s.Release != nil && ls.Source != s.Release.String() {
		rng := s.VersionRange
		d.errorf(&rng, "Version not locked",
			"The lock file (%s) resolved %q for server %q from %s, and the server's releases now come from %s: the lock is stale; run tend lock.", ls.DeclRange, ls.Constraint, s.Name, ls.Source, s.Release.String())
	}
	if s.Artifact == nil {
		return
	}
	rng := s.VersionRange
	d.errorf(&rng, "Version constraint with an artifact",
		"%q is a version constraint, and the artifact block's sha256 checks the build of one version: a server that downloads an artifact takes an exact version. Without the artifact block, a release block (or a command naming ${version}) lets tend lock pick the build.", s.VersionConstraint)
}

// lockedFrom is the lock entry a server's version was taken from, if any.
func (d *decoder) lockedFrom(s *Server) *LockedServer {
	if d.opts.Unlocked || d.opts.ResolveVersion != nil || d.lock == nil || s.Version == "" {
		return nil
	}
	return d.lock.Servers[s.Name]
}

// checkLockEntries warns about the entries of the lock file that no server
// reads: a server removed, or given an exact version. tend lock drops them.
func (d *decoder) checkLockEntries() {
	if d.lock == nil || d.opts.Unlocked || d.opts.ResolveVersion != nil {
		return
	}
	for _, n := range sortedKeys(d.lock.Servers) {
		if s, ok := d.cfg.Servers[n]; ok && s.VersionConstraint != "" {
			continue
		}
		ls := d.lock.Servers[n]
		d.warnf(ls.DeclRange.Ptr(), "Unused lock entry",
			"The lock file locks server %q, and no server %q has a version constraint: run tend lock to drop the entry.", n, n)
	}
}
