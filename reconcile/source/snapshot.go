package source

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// snapshot reads the snapshot of t from the cache: peels an annotated tag,
// checks signatures, and reads the files under Path from git objects.
func (g *Git) snapshot(t target) (*Snapshot, error) {
	s := g.repo.Storer
	snap := &Snapshot{Ref: t.String()}
	var signed *object.Tag // the annotated tag, when the ref is one
	h := t.tip
	for depth := 0; ; depth++ {
		o, err := s.EncodedObject(plumbing.AnyObject, h)
		if err != nil {
			return nil, fmt.Errorf("source: cache: %s: %v", t, err)
		}
		if o.Type() == plumbing.CommitObject {
			break
		}
		if o.Type() != plumbing.TagObject || depth > 8 {
			return nil, &RefError{Remote: g.display, Ref: g.opts.Ref,
				Reason: fmt.Sprintf("%s points at a %s, not a commit", t, o.Type())}
		}
		tag, err := object.DecodeTag(s, o)
		if err != nil {
			return nil, fmt.Errorf("source: cache: tag %s: %v", h, err)
		}
		if signed == nil {
			signed = tag
			snap.Tag = tag.Hash.String()
		}
		h = tag.Target
	}
	c, err := object.GetCommit(s, h)
	if err != nil {
		return nil, fmt.Errorf("source: cache: commit %s: %v", h, err)
	}
	snap.Commit = c.Hash.String()
	if t.name == "" {
		snap.Ref = snap.Commit
	}
	snap.Author = fmt.Sprintf("%s <%s>", c.Author.Name, c.Author.Email)
	snap.Time = c.Author.When
	snap.Message, _, _ = strings.Cut(strings.TrimSpace(c.Message), "\n")
	snap.Message = strings.TrimSpace(snap.Message)

	if g.keyring != nil {
		if err := g.verify(snap, c, signed); err != nil {
			return nil, err
		}
	}
	files, err := g.readFiles(c, snap)
	if err != nil {
		return nil, err
	}
	snap.Files = files
	return snap, nil
}

// verify checks the signature of the annotated tag, when the ref is one,
// else of the commit.
func (g *Git) verify(snap *Snapshot, c *object.Commit, tag *object.Tag) error {
	se := &SignatureError{Remote: g.display, Ref: snap.Ref, Commit: snap.Commit}
	sig := c.PGPSignature
	var encode func(plumbing.EncodedObject) error = c.EncodeWithoutSignature
	if tag != nil {
		se.Tag = tag.Name
		sig = tag.PGPSignature
		encode = tag.EncodeWithoutSignature
	}
	if strings.TrimSpace(sig) == "" {
		se.Reason = SigUnsigned
		return se
	}
	if strings.Count(sig, "-----BEGIN ") > 1 {
		se.Reason = SigMultiple
		return se
	}
	issuer, err := signatureIssuer(sig)
	if err != nil {
		se.Reason, se.Err = SigNotPGP, err
		return se
	}
	se.KeyID = issuer
	mo := &plumbing.MemoryObject{}
	if err := encode(mo); err != nil {
		return fmt.Errorf("source: encoding %s: %v", snap.Commit, err)
	}
	r, err := mo.Reader()
	if err != nil {
		return fmt.Errorf("source: encoding %s: %v", snap.Commit, err)
	}
	ent, err := openpgp.CheckArmoredDetachedSignature(g.keyring, r, strings.NewReader(sig), nil)
	if err != nil {
		se.Err = err
		se.Reason = SigInvalid
		if errors.Is(err, pgperrors.ErrUnknownIssuer) {
			se.Reason = SigUnknownKey
		}
		return se
	}
	snap.Signer = identity(ent)
	snap.SignerKeyID = issuer
	return nil
}

// signatureIssuer returns the issuer key id (16 hex digits) of an armored
// OpenPGP signature.
func signatureIssuer(armored string) (string, error) {
	block, err := armor.Decode(strings.NewReader(armored))
	if err != nil {
		return "", fmt.Errorf("not an armored OpenPGP signature: %v", err)
	}
	if block.Type != openpgp.SignatureType {
		return "", fmt.Errorf("armor type %q, want %q", block.Type, openpgp.SignatureType)
	}
	p, err := packet.Read(block.Body)
	if err != nil {
		return "", fmt.Errorf("reading the signature packet: %v", err)
	}
	sig, ok := p.(*packet.Signature)
	if !ok {
		return "", fmt.Errorf("packet is a %T, not a signature", p)
	}
	switch {
	case sig.IssuerKeyId != nil:
		return fmt.Sprintf("%016X", *sig.IssuerKeyId), nil
	case len(sig.IssuerFingerprint) >= 8:
		fp := sig.IssuerFingerprint
		return fmt.Sprintf("%X", fp[len(fp)-8:]), nil
	}
	return "unknown", nil
}

func identity(e *openpgp.Entity) string {
	if id := e.PrimaryIdentity(); id != nil {
		return id.Name
	}
	for name := range e.Identities {
		return name
	}
	return fmt.Sprintf("%016X", e.PrimaryKey.KeyId)
}

// readFiles reads every regular (or executable) file under Path from the
// commit's tree; hidden files and folders, symlinks and submodules are
// skipped, and the total size is bounded by MaxBytes.
func (g *Git) readFiles(c *object.Commit, snap *Snapshot) (map[string][]byte, error) {
	s := g.repo.Storer
	tree, err := c.Tree()
	if err != nil {
		return nil, fmt.Errorf("source: cache: tree of %s: %v", c.Hash, err)
	}
	if g.path != "" {
		ent, err := tree.FindEntry(g.path)
		if err != nil {
			return nil, &PathError{Path: g.path, Commit: snap.Commit, Ref: snap.Ref, Reason: "does not exist"}
		}
		if ent.Mode != filemode.Dir {
			return nil, &PathError{Path: g.path, Commit: snap.Commit, Ref: snap.Ref, Reason: "is not a directory"}
		}
		if tree, err = object.GetTree(s, ent.Hash); err != nil {
			return nil, fmt.Errorf("source: cache: tree %s: %v", g.path, err)
		}
	}
	files := map[string][]byte{}
	var total int64
	var walk func(t *object.Tree, prefix string) error
	walk = func(t *object.Tree, prefix string) error {
		for _, e := range t.Entries {
			if strings.HasPrefix(e.Name, ".") {
				continue
			}
			name := prefix + e.Name
			switch {
			case e.Mode == filemode.Dir:
				sub, err := object.GetTree(s, e.Hash)
				if err != nil {
					return fmt.Errorf("source: cache: tree %s: %v", name, err)
				}
				if err := walk(sub, name+"/"); err != nil {
					return err
				}
			case e.Mode.IsRegular() || e.Mode == filemode.Executable:
				b, err := object.GetBlob(s, e.Hash)
				if err != nil {
					return fmt.Errorf("source: cache: blob %s: %v", name, err)
				}
				if total += b.Size; total > g.opts.MaxBytes {
					return &SizeError{Path: g.path, Commit: snap.Commit, Limit: g.opts.MaxBytes, File: name}
				}
				data, err := readBlob(b)
				if err != nil {
					return fmt.Errorf("source: cache: blob %s: %v", name, err)
				}
				files[name] = data
			}
		}
		return nil
	}
	if err := walk(tree, ""); err != nil {
		return nil, err
	}
	return files, nil
}

func readBlob(b *object.Blob) ([]byte, error) {
	r, err := b.Reader()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var buf bytes.Buffer
	buf.Grow(int(b.Size))
	if _, err := io.Copy(&buf, r); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
