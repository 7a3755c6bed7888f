package source

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/revlist"
	"github.com/go-git/go-git/v5/plumbing/transport"
)

// CommitRequest asks Commit for one commit on a branch of the remote.
type CommitRequest struct {
	// Branch is the branch to commit on and push (a name, no refs/heads/).
	Branch string
	// Base is the branch a new Branch starts from, when the remote has no
	// Branch yet.
	Base string
	// Edit is given the files under Path at the branch's tip (read-only,
	// as Snapshot.Files) and returns the files to write there and the
	// commit message. Writing nothing, or only what is there already,
	// makes no commit. It is called again after a fresh fetch when the
	// push was rejected, so it must compute from the files it is given.
	Edit func(files map[string][]byte) (write map[string][]byte, message string, err error)
	// Author is the author and committer.
	AuthorName, AuthorEmail string
	// SignKey, when set, signs the commit (an OpenPGP entity with a
	// decrypted private key).
	SignKey *openpgp.Entity
	// When is the commit's time (now when zero).
	When time.Time
}

// CommitResult is what Commit did.
type CommitResult struct {
	Commit   string // the commit pushed; "" when there was nothing to commit
	Parent   string // the branch's tip it was made on
	Created  bool   // the branch did not exist and was made from Base
	Attempts int    // pushes tried: 2 when the first was rejected
	Message  string
}

// PushRejectedError says the remote refused the push twice, the second
// time after a fresh fetch (someone keeps pushing to the branch, or it is
// protected).
type PushRejectedError struct {
	Remote, Branch string
	Err            error
}

func (e *PushRejectedError) Error() string {
	return fmt.Sprintf("source: push to %s of %s rejected twice (the second time after a fresh fetch): %v", e.Branch, e.Remote, e.Err)
}

func (e *PushRejectedError) Unwrap() error { return e.Err }

// Commit writes files on top of a branch and pushes the commit, without a
// worktree: it fetches the branch (or Base) into the cache, builds the
// blobs, trees and commit there, and pushes over the source's transport
// and credentials. A push that is rejected (the branch moved meanwhile) is
// tried once more after a fresh fetch, with Edit called again.
func (g *Git) Commit(ctx context.Context, req CommitRequest) (CommitResult, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	var res CommitResult
	if req.Edit == nil || checkBranchName(req.Branch) != nil || req.Base != "" && checkBranchName(req.Base) != nil {
		return res, fmt.Errorf("source: a commit needs a valid branch (%q), base (%q) and an Edit function", req.Branch, req.Base)
	}
	if err := g.open(); err != nil {
		return res, err
	}
	var lastErr error
	for attempt := 1; attempt <= 2; attempt++ {
		res = CommitResult{}
		tip, created, err := g.fetchBranch(ctx, req.Branch, req.Base)
		if err != nil {
			return res, err
		}
		res.Parent, res.Created = tip.String(), created
		commit, msg, err := g.buildCommit(tip, req)
		if err != nil || commit.IsZero() {
			return res, err
		}
		res.Attempts, res.Message = attempt, msg
		err = g.push(ctx, req.Branch, commit, tip, created)
		if err == nil {
			res.Commit = commit.String()
			return res, nil
		}
		var ue *UnreachableError
		if errors.As(err, &ue) {
			return res, err
		}
		lastErr = err
	}
	return res, &PushRejectedError{Remote: g.display, Branch: req.Branch, Err: lastErr}
}

func checkBranchName(b string) error {
	if b == "" {
		return errors.New("empty")
	}
	return plumbing.NewBranchReferenceName(b).Validate()
}

// pushRef is the cache's ref of a branch Commit works on.
func pushRef(branch string) plumbing.ReferenceName {
	return plumbing.ReferenceName("refs/tend/push/" + branch)
}

// fetchBranch brings the remote's branch (or base, when there is no
// branch) into the cache and returns its tip.
func (g *Git) fetchBranch(ctx context.Context, branch, base string) (plumbing.Hash, bool, error) {
	rem := g.remote()
	refs, err := g.list(ctx, rem)
	if err != nil {
		return plumbing.ZeroHash, false, err
	}
	find := func(b string) *plumbing.Reference {
		for _, r := range refs {
			if r.Name() == plumbing.NewBranchReferenceName(b) {
				return r
			}
		}
		return nil
	}
	from, created := find(branch), false
	if from == nil && base != "" {
		from, created = find(base), true
	}
	if from == nil {
		return plumbing.ZeroHash, false, &RefError{Remote: g.display, Ref: Ref{Kind: KindBranch, Name: branch},
			Reason: fmt.Sprintf("neither branch %q nor %q found", branch, base)}
	}
	if !g.hasCommit(from.Hash()) {
		spec := config.RefSpec("+" + from.Name().String() + ":" + pushRef(branch).String())
		if err := g.fetch(ctx, rem, []config.RefSpec{spec}); err != nil {
			return plumbing.ZeroHash, false, err
		}
	}
	if !g.hasCommit(from.Hash()) {
		return plumbing.ZeroHash, false, fmt.Errorf("source: fetch of %s from %s did not bring %s", from.Name(), g.display, from.Hash())
	}
	return from.Hash(), created, nil
}

// buildCommit calls Edit on the files of tip and stores the commit of
// what it writes; the zero hash when that changes nothing.
func (g *Git) buildCommit(tip plumbing.Hash, req CommitRequest) (plumbing.Hash, string, error) {
	parent, err := object.GetCommit(g.repo.Storer, tip)
	if err != nil {
		return plumbing.ZeroHash, "", fmt.Errorf("source: cache: commit %s: %v", tip, err)
	}
	files, err := g.readFiles(parent, &Snapshot{Commit: tip.String(), Ref: req.Branch})
	if err != nil {
		return plumbing.ZeroHash, "", err
	}
	write, msg, err := req.Edit(files)
	if err != nil {
		return plumbing.ZeroHash, "", err
	}
	tree, err := parent.Tree()
	if err != nil {
		return plumbing.ZeroHash, "", fmt.Errorf("source: cache: tree of %s: %v", tip, err)
	}
	root := tree.Hash
	for _, name := range sortedNames(write) {
		if bytes.Equal(files[name], write[name]) {
			continue
		}
		full := path.Join(g.path, name)
		if root, err = g.putFile(root, strings.Split(full, "/"), write[name]); err != nil {
			return plumbing.ZeroHash, "", err
		}
	}
	if root == tree.Hash {
		return plumbing.ZeroHash, "", nil
	}
	when := req.When
	if when.IsZero() {
		when = time.Now()
	}
	sig := object.Signature{Name: req.AuthorName, Email: req.AuthorEmail, When: when}
	c := &object.Commit{Author: sig, Committer: sig, Message: msg, TreeHash: root, ParentHashes: []plumbing.Hash{tip}}
	if req.SignKey != nil {
		if c.PGPSignature, err = signCommit(c, req.SignKey); err != nil {
			return plumbing.ZeroHash, "", err
		}
	}
	h, err := g.store(c)
	return h, msg, err
}

func sortedNames(m map[string][]byte) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// signCommit makes the armored detached signature of a commit, as go-git's
// worktree does for CommitOptions.SignKey.
func signCommit(c *object.Commit, key *openpgp.Entity) (string, error) {
	mo := &plumbing.MemoryObject{}
	if err := c.Encode(mo); err != nil {
		return "", err
	}
	r, err := mo.Reader()
	if err != nil {
		return "", err
	}
	var sig bytes.Buffer
	if err := openpgp.ArmoredDetachSign(&sig, key, r, nil); err != nil {
		return "", fmt.Errorf("source: signing the commit: %v", err)
	}
	return sig.String(), nil
}

type encodable interface {
	Encode(plumbing.EncodedObject) error
}

func (g *Git) store(o encodable) (plumbing.Hash, error) {
	mo := g.repo.Storer.NewEncodedObject()
	if err := o.Encode(mo); err != nil {
		return plumbing.ZeroHash, err
	}
	h, err := g.repo.Storer.SetEncodedObject(mo)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("source: cache: %v", err)
	}
	return h, nil
}

// putFile returns the tree that is treeHash with the file at parts set to
// data (folders on the way made as needed); the zero hash is an empty tree.
func (g *Git) putFile(treeHash plumbing.Hash, parts []string, data []byte) (plumbing.Hash, error) {
	var entries []object.TreeEntry
	if !treeHash.IsZero() {
		t, err := object.GetTree(g.repo.Storer, treeHash)
		if err != nil {
			return plumbing.ZeroHash, fmt.Errorf("source: cache: tree %s: %v", treeHash, err)
		}
		entries = append(entries, t.Entries...)
	}
	name := parts[0]
	i := sort.Search(len(entries), func(i int) bool { return entries[i].Name >= name })
	found := i < len(entries) && entries[i].Name == name
	var entry object.TreeEntry
	if len(parts) == 1 {
		blob := g.repo.Storer.NewEncodedObject()
		blob.SetType(plumbing.BlobObject)
		w, err := blob.Writer()
		if err != nil {
			return plumbing.ZeroHash, err
		}
		if _, err := w.Write(data); err != nil {
			return plumbing.ZeroHash, err
		}
		if err := w.Close(); err != nil {
			return plumbing.ZeroHash, err
		}
		h, err := g.repo.Storer.SetEncodedObject(blob)
		if err != nil {
			return plumbing.ZeroHash, fmt.Errorf("source: cache: %v", err)
		}
		entry = object.TreeEntry{Name: name, Mode: filemode.Regular, Hash: h}
	} else {
		sub := plumbing.ZeroHash
		if found && entries[i].Mode == filemode.Dir {
			sub = entries[i].Hash
		}
		h, err := g.putFile(sub, parts[1:], data)
		if err != nil {
			return plumbing.ZeroHash, err
		}
		entry = object.TreeEntry{Name: name, Mode: filemode.Dir, Hash: h}
	}
	if found {
		entries[i] = entry
	} else {
		entries = append(entries[:i], append([]object.TreeEntry{entry}, entries[i:]...)...)
	}
	// git sorts a folder's entries as if its name ended in "/".
	sort.SliceStable(entries, func(a, b int) bool { return treeKey(entries[a]) < treeKey(entries[b]) })
	return g.store(&object.Tree{Entries: entries})
}

func treeKey(e object.TreeEntry) string {
	if e.Mode == filemode.Dir {
		return e.Name + "/"
	}
	return e.Name
}

// push moves the remote's branch from old to commit, refusing to
// overwrite anything else.
func (g *Git) push(ctx context.Context, branch string, commit, old plumbing.Hash, created bool) error {
	ctx, cancel := context.WithTimeout(ctx, g.opts.Timeout)
	defer cancel()
	local := pushRef(branch)
	if err := g.repo.Storer.SetReference(plumbing.NewHashReference(local, commit)); err != nil {
		return fmt.Errorf("source: cache: %v", err)
	}
	dst := plumbing.NewBranchReferenceName(branch)
	if g.local != "" {
		return g.pushLocal(ctx, dst, commit, old, created)
	}
	opts := &git.PushOptions{
		RemoteName: "origin",
		RefSpecs:   []config.RefSpec{config.RefSpec(local.String() + ":" + dst.String())},
		Auth:       g.auth,
	}
	if !created {
		opts.RequireRemoteRefs = []config.RefSpec{config.RefSpec(old.String() + ":" + dst.String())}
	}
	rem := git.NewRemote(g.repo.Storer, &config.RemoteConfig{Name: "origin", URLs: []string{g.connect}})
	err := rem.PushContext(ctx, opts)
	switch {
	case err == nil || errors.Is(err, git.NoErrAlreadyUpToDate):
		return nil
	case errors.Is(err, transport.ErrAuthenticationRequired), errors.Is(err, transport.ErrAuthorizationFailed),
		errors.Is(err, transport.ErrRepositoryNotFound), errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return g.unreachableCtx("push", ctx, err)
	}
	return g.red.err(err)
}

// pushLocal pushes to a repository on the local disk in-process, as
// localRemote fetches: the objects it lacks, then the ref, compared and
// set.
func (g *Git) pushLocal(ctx context.Context, dst plumbing.ReferenceName, commit, old plumbing.Hash, created bool) error {
	r, err := git.PlainOpen(g.local)
	if err != nil {
		return g.unreachable("push", transport.ErrRepositoryNotFound)
	}
	objs, err := revlist.ObjectsWithStorageForIgnores(g.repo.Storer, r.Storer, []plumbing.Hash{commit}, []plumbing.Hash{old})
	if err != nil {
		return fmt.Errorf("source: push: %v", err)
	}
	if err := copyObjects(ctx, g.repo.Storer, r.Storer, objs); err != nil {
		return fmt.Errorf("source: push: %v", err)
	}
	var prev *plumbing.Reference
	if !created {
		prev = plumbing.NewHashReference(dst, old)
	} else if _, err := r.Storer.Reference(dst); err == nil {
		return fmt.Errorf("source: push: %s was created meanwhile", dst)
	}
	if err := r.Storer.CheckAndSetReference(plumbing.NewHashReference(dst, commit), prev); err != nil {
		return fmt.Errorf("source: push: %s moved meanwhile: %v", dst, err)
	}
	return nil
}
