package source

import (
	"fmt"
	"sort"
	"strings"

	"github.com/Masterminds/semver/v3"
	"github.com/go-git/go-git/v5/plumbing"
)

// maxListed is how many names a RefError lists.
const maxListed = 10

// resolve finds the ref in the remote's advertised refs.
func (g *Git) resolve(refs []*plumbing.Reference) (target, error) {
	byName := make(map[plumbing.ReferenceName]plumbing.Hash, len(refs))
	var branches, tags []string
	for _, r := range refs {
		if r.Type() != plumbing.HashReference || strings.HasSuffix(r.Name().String(), "^{}") {
			continue
		}
		byName[r.Name()] = r.Hash()
		switch {
		case r.Name().IsBranch():
			branches = append(branches, r.Name().Short())
		case r.Name().IsTag():
			tags = append(tags, strings.TrimPrefix(r.Name().String(), "refs/tags/"))
		}
	}
	ref := g.opts.Ref
	switch ref.Kind {
	case KindBranch, KindTag:
		name := plumbing.NewBranchReferenceName(ref.Name)
		list, what := branches, "branches"
		if ref.Kind == KindTag {
			name = plumbing.NewTagReferenceName(ref.Name)
			list, what = tags, "tags"
		}
		if h, ok := byName[name]; ok {
			return target{name: name, tip: h}, nil
		}
		e := &RefError{Remote: g.display, Ref: ref, What: what,
			Reason: fmt.Sprintf("%s %q not found", ref.Kind, ref.Name)}
		sort.Strings(list)
		e.Available, e.More = few(list)
		return target{}, e
	case KindSemver:
		c, err := semver.NewConstraint(ref.Name)
		if err != nil {
			return target{}, err // validated in NewGit
		}
		vs := semverTags(tags)
		for _, v := range vs {
			if c.Check(v.v) {
				name := plumbing.NewTagReferenceName(v.tag)
				return target{name: name, tip: byName[name]}, nil
			}
		}
		e := &RefError{Remote: g.display, Ref: ref, What: "semver tags",
			Reason: fmt.Sprintf("no tag matches the semver range %q", ref.Name)}
		names := make([]string, len(vs))
		for i, v := range vs {
			names[i] = v.tag
		}
		e.Available, e.More = few(names)
		return target{}, e
	}
	return target{}, fmt.Errorf("source: cannot resolve a %s ref from the remote's refs", ref.Kind)
}

func few(names []string) ([]string, int) {
	if len(names) <= maxListed {
		return names, 0
	}
	return names[:maxListed], len(names) - maxListed
}

type tagVersion struct {
	tag string
	v   *semver.Version
}

// semverTags returns the tags that are semantic versions ("1.2.3" or
// "v1.2.3", strictly: three numbers, optional prerelease and build), newest
// first. Of two tags with the same version ("v1.2.0" and "1.2.0"), the one
// whose name sorts last comes first, so the choice is stable.
func semverTags(tags []string) []tagVersion {
	var out []tagVersion
	for _, t := range tags {
		v, err := semver.StrictNewVersion(strings.TrimPrefix(t, "v"))
		if err != nil {
			continue
		}
		out = append(out, tagVersion{tag: t, v: v})
	}
	sort.Slice(out, func(i, j int) bool {
		if c := out[i].v.Compare(out[j].v); c != 0 {
			return c > 0
		}
		return out[i].tag > out[j].tag
	})
	return out
}

// localSemverName finds, among the cache's tags, the newest one in the
// semver range that points at tip; for Cached.
func (g *Git) localSemverName(tip plumbing.Hash) plumbing.ReferenceName {
	c, err := semver.NewConstraint(g.opts.Ref.Name)
	if err != nil {
		return ""
	}
	iter, err := g.repo.Tags()
	if err != nil {
		return ""
	}
	var tags []string
	_ = iter.ForEach(func(r *plumbing.Reference) error {
		if r.Hash() == tip {
			tags = append(tags, strings.TrimPrefix(r.Name().String(), "refs/tags/"))
		}
		return nil
	})
	for _, v := range semverTags(tags) {
		if c.Check(v.v) {
			return plumbing.NewTagReferenceName(v.tag)
		}
	}
	return ""
}
