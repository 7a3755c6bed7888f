package source

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strings"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/plumbing/revlist"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"golang.org/x/crypto/ssh/knownhosts"
)

// defaultRepackAfter is how many object packs the cache may hold before it
// is repacked into one (which also drops objects no ref reaches any more,
// e.g. history a force-push rewrote). Every fetch that brings objects adds
// one.
const defaultRepackAfter = 32

// remote is what Fetch needs of the remote: its refs, and fetching refspecs
// into the cache.
type remote interface {
	list(ctx context.Context) ([]*plumbing.Reference, error)
	fetch(ctx context.Context, specs []config.RefSpec) error
}

func (g *Git) remote() remote {
	if g.local != "" {
		return &localRemote{path: g.local, cache: g.repo}
	}
	return &netRemote{
		r:    git.NewRemote(g.repo.Storer, &config.RemoteConfig{Name: "origin", URLs: []string{g.connect}}),
		auth: g.auth,
	}
}

// list asks the remote for its refs, bounded by the timeout.
func (g *Git) list(ctx context.Context, rem remote) ([]*plumbing.Reference, error) {
	ctx, cancel := context.WithTimeout(ctx, g.opts.Timeout)
	defer cancel()
	refs, err := rem.list(ctx)
	if err != nil {
		if errors.Is(err, transport.ErrEmptyRemoteRepository) {
			return nil, &RefError{Remote: g.display, Ref: g.opts.Ref, Reason: "the repository is empty (no branches or tags)"}
		}
		return nil, g.unreachableCtx("ls-remote", ctx, err)
	}
	return refs, nil
}

// fetch fetches specs into the cache, bounded by the timeout, and repacks
// the cache now and then.
func (g *Git) fetch(ctx context.Context, rem remote, specs []config.RefSpec) error {
	ctx, cancel := context.WithTimeout(ctx, g.opts.Timeout)
	defer cancel()
	if err := rem.fetch(ctx, specs); err != nil {
		if errors.Is(err, transport.ErrEmptyRemoteRepository) {
			return &RefError{Remote: g.display, Ref: g.opts.Ref, Reason: "the repository is empty (no branches or tags)"}
		}
		if errors.Is(err, git.NoMatchingRefSpecError{}) {
			// Deleted between ls-remote and fetch.
			return &RefError{Remote: g.display, Ref: g.opts.Ref, Reason: fmt.Sprintf("%s was deleted while being fetched", g.opts.Ref)}
		}
		var pe *fs.PathError
		if errors.As(err, &pe) && g.local == "" {
			// Writing the cache failed (disk full, permissions): not the remote's fault.
			return fmt.Errorf("source: cache: %v", g.red.str(err.Error()))
		}
		return g.unreachableCtx("fetch", ctx, err)
	}
	g.maybeRepack()
	return nil
}

func (g *Git) maybeRepack() {
	r := g.repo
	pos, ok := r.Storer.(storer.PackedObjectStorer)
	if !ok || g.opts.CacheDir == "" {
		return
	}
	packs, err := pos.ObjectPacks()
	if err != nil || len(packs) <= g.repackAfter {
		return
	}
	// Best effort: a failed repack leaves the old packs in place. Either way
	// reopen the cache: the storage caches what it knew of the old packs.
	_ = g.repo.RepackObjects(&git.RepackConfig{})
	g.repo = nil
	if err := g.open(); err != nil {
		g.repo = r
	}
}

// unreachableCtx classifies err from a network call made with ctx.
func (g *Git) unreachableCtx(op string, ctx context.Context, err error) error {
	if ctx.Err() != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		// Some transports report the cut connection rather than the context.
		err = fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	return g.unreachable(op, err)
}

func (g *Git) unreachable(op string, err error) error {
	e := &UnreachableError{Remote: g.display, Op: op, Reason: ReasonNetwork, Err: g.red.err(err)}
	var keyErr *knownhosts.KeyError
	var revoked *knownhosts.RevokedError
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		e.Reason, e.Timeout = ReasonTimeout, g.opts.Timeout
	case errors.Is(err, context.Canceled):
		e.Reason = ReasonCanceled
	case errors.Is(err, transport.ErrAuthenticationRequired), errors.Is(err, transport.ErrAuthorizationFailed),
		errors.Is(err, transport.ErrInvalidAuthMethod), strings.Contains(err.Error(), "unable to authenticate"):
		e.Reason = ReasonAuth
		e.NoCredentials = g.auth == nil
	case errors.Is(err, transport.ErrRepositoryNotFound):
		e.Reason = ReasonNotFound
	case errors.As(err, &keyErr), errors.As(err, &revoked):
		e.Reason = ReasonHostKey
	}
	return e
}

// netRemote is a remote reached through go-git's transports (http, https,
// ssh).
type netRemote struct {
	r    *git.Remote
	auth transport.AuthMethod
}

func (n *netRemote) list(ctx context.Context) ([]*plumbing.Reference, error) {
	return n.r.ListContext(ctx, &git.ListOptions{Auth: n.auth})
}

func (n *netRemote) fetch(ctx context.Context, specs []config.RefSpec) error {
	err := n.r.FetchContext(ctx, &git.FetchOptions{
		RefSpecs: specs,
		Auth:     n.auth,
		Force:    true,
		Tags:     git.NoTags,
	})
	if errors.Is(err, git.NoErrAlreadyUpToDate) {
		return nil
	}
	return err
}

// localRemote is a repository on the local disk. go-git's file transport
// would exec git-upload-pack, so objects are copied in-process instead:
// everything reachable from the wanted refs and not from the cache's refs,
// written as one pack.
type localRemote struct {
	path  string
	cache *git.Repository
}

func (l *localRemote) open() (*git.Repository, error) {
	r, err := git.PlainOpen(l.path)
	if errors.Is(err, git.ErrRepositoryNotExists) {
		return nil, transport.ErrRepositoryNotFound
	}
	return r, err
}

func (l *localRemote) list(ctx context.Context) ([]*plumbing.Reference, error) {
	src, err := l.open()
	if err != nil {
		return nil, err
	}
	iter, err := src.References()
	if err != nil {
		return nil, err
	}
	var refs []*plumbing.Reference
	err = iter.ForEach(func(r *plumbing.Reference) error {
		if r.Type() == plumbing.HashReference && (r.Name().IsBranch() || r.Name().IsTag()) {
			refs = append(refs, r)
		}
		return nil
	})
	if err == nil && len(refs) == 0 {
		err = transport.ErrEmptyRemoteRepository
	}
	return refs, err
}

func (l *localRemote) fetch(ctx context.Context, specs []config.RefSpec) error {
	src, err := l.open()
	if err != nil {
		return err
	}
	refs, err := l.list(ctx)
	if err != nil {
		return err
	}
	var updates []*plumbing.Reference
	var wants []plumbing.Hash
	for _, r := range refs {
		for _, s := range specs {
			if s.Match(r.Name()) {
				updates = append(updates, plumbing.NewHashReference(s.Dst(r.Name()), r.Hash()))
				wants = append(wants, r.Hash())
				break
			}
		}
	}
	var haves []plumbing.Hash
	iter, err := l.cache.Storer.IterReferences()
	if err != nil {
		return err
	}
	_ = iter.ForEach(func(r *plumbing.Reference) error {
		if r.Type() == plumbing.HashReference {
			haves = append(haves, r.Hash())
		}
		return nil
	})
	objs, err := revlist.ObjectsWithStorageForIgnores(src.Storer, l.cache.Storer, wants, haves)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := copyObjects(ctx, src.Storer, l.cache.Storer, objs); err != nil {
		return err
	}
	for _, r := range updates {
		if err := l.cache.Storer.SetReference(r); err != nil {
			return err
		}
	}
	return nil
}

// copyObjects copies objs from src to dst: as one pack when dst takes packs,
// else one by one with commits and tags last, so that a commit is never
// present without its tree.
func copyObjects(ctx context.Context, src, dst storer.Storer, objs []plumbing.Hash) error {
	if len(objs) == 0 {
		return nil
	}
	if pw, ok := dst.(storer.PackfileWriter); ok {
		w, err := pw.PackfileWriter()
		if err != nil {
			return err
		}
		if _, err := packfile.NewEncoder(w, src, false).Encode(objs, 10); err != nil {
			_ = w.Close()
			return err
		}
		return w.Close()
	}
	rank := map[plumbing.ObjectType]int{plumbing.BlobObject: 0, plumbing.TreeObject: 1, plumbing.CommitObject: 2, plumbing.TagObject: 3}
	loaded := make([]plumbing.EncodedObject, 0, len(objs))
	for _, h := range objs {
		o, err := src.EncodedObject(plumbing.AnyObject, h)
		if err != nil {
			return err
		}
		loaded = append(loaded, o)
	}
	sort.SliceStable(loaded, func(i, j int) bool { return rank[loaded[i].Type()] < rank[loaded[j].Type()] })
	for _, o := range loaded {
		if err := ctx.Err(); err != nil {
			return err
		}
		if _, err := dst.SetEncodedObject(o); err != nil {
			return err
		}
	}
	return nil
}
