package main

import (
	"bytes"
	"os"
	"regexp"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/rogpeppe/go-internal/testscript"
)

// cmdPGPKey: pgp-key VAR PUBFILE makes a new OpenPGP key without a
// passphrase, puts its armored private key in $VAR and its public key in
// PUBFILE.
func cmdPGPKey(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: pgp-key VAR PUBFILE")
	}
	e, err := openpgp.NewEntity("tend bot", "", "tend@example.com", nil)
	ts.Check(err)
	var priv, pub bytes.Buffer
	w, err := armor.Encode(&priv, openpgp.PrivateKeyType, nil)
	ts.Check(err)
	ts.Check(e.SerializePrivate(w, nil))
	ts.Check(w.Close())
	w, err = armor.Encode(&pub, openpgp.PublicKeyType, nil)
	ts.Check(err)
	ts.Check(e.Serialize(w))
	ts.Check(w.Close())
	ts.Setenv(args[0], priv.String())
	// A line of the key's body ($PGP_KEY_LINE), for scripts to assert it
	// never shows; quoted, since stdout and stderr take a regexp and base64
	// has + and /.
	ts.Setenv("PGP_KEY_LINE", regexp.QuoteMeta(strings.Split(priv.String(), "\n")[3][:40]))
	ts.Check(os.WriteFile(ts.MkAbs(args[1]), pub.Bytes(), 0o644))
}

// cmdGitVerifySigned: git-verify-signed REPO REF PUBFILE checks that the
// commit REF points to in the repository at REPO carries a valid OpenPGP
// signature by the key in PUBFILE.
func cmdGitVerifySigned(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 3 {
		ts.Fatalf("usage: git-verify-signed REPO REF PUBFILE")
	}
	r, err := git.PlainOpen(ts.MkAbs(args[0]))
	ts.Check(err)
	h, err := r.ResolveRevision(plumbing.Revision(args[1]))
	ts.Check(err)
	c, err := object.GetCommit(r.Storer, *h)
	ts.Check(err)
	pub, err := os.ReadFile(ts.MkAbs(args[2]))
	ts.Check(err)
	_, err = c.Verify(string(pub))
	if (err == nil) == neg {
		ts.Fatalf("commit %s of %s: signature check: %v", h, args[1], err)
	}
}
