package source

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

func newEntity(t *testing.T, name string) (*openpgp.Entity, string) {
	t.Helper()
	e, err := openpgp.NewEntity(name, "", strings.ToLower(strings.Fields(name)[0])+"@example.com",
		&packet.Config{Algorithm: packet.PubKeyAlgoEdDSA})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w, err := armor.Encode(&buf, openpgp.PublicKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Serialize(w); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return e, buf.String()
}

// signedCommit makes a commit signed by key with go-git in the server's
// working clone.
func signedCommit(t *testing.T, s *server, key *openpgp.Entity, file, content string) string {
	t.Helper()
	repo, err := git.PlainOpen(s.work)
	if err != nil {
		t.Fatal(err)
	}
	wt, err := repo.Worktree()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.work, file), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := wt.Add(file); err != nil {
		t.Fatal(err)
	}
	h, err := wt.Commit("signed: "+file, &git.CommitOptions{
		Author:  &object.Signature{Name: "Sig Ner", Email: "signer@example.com", When: time.Now()},
		SignKey: key,
	})
	if err != nil {
		t.Fatal(err)
	}
	return h.String()
}

func signedTag(t *testing.T, s *server, key *openpgp.Entity, name, commit string) {
	t.Helper()
	repo, err := git.PlainOpen(s.work)
	if err != nil {
		t.Fatal(err)
	}
	_, err = repo.CreateTag(name, plumbing.NewHash(commit), &git.CreateTagOptions{
		Tagger:  &object.Signature{Name: "Sig Ner", Email: "signer@example.com", When: time.Now()},
		Message: "release " + name,
		SignKey: key,
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestSignatures(t *testing.T) {
	t.Parallel()
	good, goodRing := newEntity(t, "Tend Signer")
	_, otherRing := newEntity(t, "Other Person")
	goodID := fmt.Sprintf("%016X", good.PrimaryKey.KeyId)

	s := newServer(t)
	unsigned := s.commit("unsigned base", map[string]string{"a.hcl": "a"})
	signed := signedCommit(t, s, good, "b.hcl", "b")
	signedTag(t, s, good, "v1.0.0", unsigned)               // signed annotated tag on an unsigned commit
	s.git(s.work, "tag", "v1.1.0", unsigned)                // lightweight tag on an unsigned commit
	s.git(s.work, "tag", "v1.2.0", signed)                  // lightweight tag on a signed commit
	s.git(s.work, "tag", "-a", "-m", "x", "v1.3.0", signed) // unsigned annotated tag on a signed commit
	s.push("main", "--tags")

	withRing := func(ring string) func(*Options) { return func(o *Options) { o.Keyring = ring } }

	// The signed head, with the right keyring.
	g := s.newGit("main", withRing(goodRing))
	snap, _ := mustFetch(t, g)
	if snap.Commit != signed || snap.Signer != "Tend Signer <tend@example.com>" || snap.SignerKeyID != goodID {
		t.Errorf("signed head: commit %s signer %q key %s", snap.Commit, snap.Signer, snap.SignerKeyID)
	}
	// A keyring with both keys works too.
	mustFetch(t, s.newGit("main", withRing(goodRing+"\n"+otherRing)))

	// Signed by a key not in the keyring.
	_, _, err := s.newGit("main", withRing(otherRing)).Fetch(context.Background())
	var se *SignatureError
	if !errors.As(err, &se) || se.Reason != SigUnknownKey || se.KeyID != goodID || se.Commit != signed {
		t.Errorf("unknown key: %v", err)
	} else if !strings.Contains(err.Error(), signed) || !strings.Contains(err.Error(), goodID) {
		t.Errorf("unknown key: message should name the commit and the key: %v", err)
	}

	// Tags: the annotated tag's signature counts; a lightweight tag falls
	// back to the commit's.
	for _, c := range []struct {
		ref    string
		reason string // "" = accepted
	}{
		{"tag:v1.0.0", ""},
		{"tag:v1.1.0", SigUnsigned},
		{"tag:v1.2.0", ""},
		{"tag:v1.3.0", SigUnsigned},
		{"semver:~1.0", ""},
		{"commit:" + signed, ""},
		{"commit:" + unsigned, SigUnsigned},
	} {
		snap, _, err := s.newGit(c.ref, withRing(goodRing)).Fetch(context.Background())
		switch {
		case c.reason == "" && err != nil:
			t.Errorf("%s: %v", c.ref, err)
		case c.reason == "" && snap.Signer == "":
			t.Errorf("%s: no Signer", c.ref)
		case c.reason != "" && (!errors.As(err, &se) || se.Reason != c.reason):
			t.Errorf("%s: %v, want *SignatureError %s", c.ref, err, c.reason)
		}
	}
	if _, _, err := s.newGit("tag:v1.3.0", withRing(goodRing)).Fetch(context.Background()); err == nil ||
		!strings.Contains(err.Error(), "tag v1.3.0 (commit "+signed+")") || !strings.Contains(err.Error(), "not signed") {
		t.Errorf("unsigned annotated tag message: %v", err)
	}

	// A signed commit whose content was changed afterwards, written
	// straight into the server's repository.
	bare, err := git.PlainOpen(s.bare)
	if err != nil {
		t.Fatal(err)
	}
	c, err := bare.CommitObject(plumbing.NewHash(signed))
	if err != nil {
		t.Fatal(err)
	}
	c.Message = "tampered"
	obj := bare.Storer.NewEncodedObject()
	if err := c.Encode(obj); err != nil {
		t.Fatal(err)
	}
	forged, err := bare.Storer.SetEncodedObject(obj)
	if err != nil {
		t.Fatal(err)
	}
	if err := bare.Storer.SetReference(plumbing.NewHashReference("refs/heads/forged", forged)); err != nil {
		t.Fatal(err)
	}
	_, _, err = s.newGit("forged", withRing(goodRing)).Fetch(context.Background())
	if !errors.As(err, &se) || se.Reason != SigInvalid || se.Commit != forged.String() || se.KeyID != goodID {
		t.Errorf("tampered commit: %v, want *SignatureError %s", err, SigInvalid)
	}

	t.Log(err)
	// An unsigned head.
	head := s.commit("unsigned head", map[string]string{"c.hcl": "c"})
	s.push("main")
	_, _, err = g.Fetch(context.Background())
	if !errors.As(err, &se) || se.Reason != SigUnsigned || se.Commit != head || se.Ref != "refs/heads/main" {
		t.Errorf("unsigned head: %v", err)
	}
	// The last good snapshot is still there for the caller, and a fetch
	// with nothing new reports the same refusal.
	if g.Last() == nil || g.Last().Commit != signed {
		t.Errorf("Last() after a refused head: %+v", g.Last())
	}
	if _, _, err := g.Fetch(context.Background()); !errors.As(err, &se) {
		t.Errorf("refused head, fetched again: %v", err)
	}
	// Cached after a restart serves the last good (signed) commit, not the head.
	g2, _ := NewGit(g.Options())
	if snap, err := g2.Cached(); err != nil || snap.Commit != signed {
		t.Errorf("Cached after a refused head: %v %v", snap, err)
	}
}
