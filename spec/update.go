package spec

import (
	"fmt"
	"net/mail"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/hashicorp/hcl/v2"
)

// Update policies: the semver steps tend run may take on its own.
const (
	PolicyPatch = "patch" // 1.4.2 → 1.4.3, not 1.5.0
	PolicyMinor = "minor" // 1.4.2 → 1.5.0, not 2.0.0
	PolicyMajor = "major" // any newer release the constraint allows
	PolicyNone  = "none"  // report, never take
)

// UpdatePolicies lists the policies in the order of what they allow.
var UpdatePolicies = []string{PolicyNone, PolicyPatch, PolicyMinor, PolicyMajor}

// DefaultUpdatePolicy is the policy of an update block that names none.
const DefaultUpdatePolicy = PolicyPatch

// DefaultUpdateAuthor is the author (and committer) of update commits
// when no update block names one.
const DefaultUpdateAuthor = "tend <tend@localhost>"

// Update is an update block, in tend {} or in a server: tend run's
// automatic updates of the lock file. A server's block overrides the tend
// block's attribute by attribute (Config.UpdateOf).
type Update struct {
	Schedule string `json:"schedule,omitempty"` // cron
	Policy   string `json:"policy,omitempty"`
	Commit   bool   `json:"commit,omitempty"`
	// Branch is where update commits go; "" is the branch tend watches.
	Branch      string `json:"branch,omitempty"`
	AuthorName  string `json:"author_name,omitempty"`
	AuthorEmail string `json:"author_email,omitempty"`
	// SigningKey is an armored OpenPGP private key that signs the
	// commits; always sensitive. Nil when not set.
	SigningKey *Value `json:"signing_key,omitempty"`

	DeclRange hcl.Range `json:"-"`
	// set holds the range of each attribute the block sets.
	set map[string]hcl.Range
}

// Has reports whether the block sets the attribute.
func (u *Update) Has(name string) bool { _, ok := u.set[name]; return ok }

var updateSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
	{Name: "schedule"}, {Name: "policy"}, {Name: "commit"}, {Name: "branch"}, {Name: "author"}, {Name: "signing_key"},
}}

// decodeUpdate decodes an update block. Whether it makes sense with the
// settings it inherits is checked by checkUpdates, once every block is in.
func (d *decoder) decodeUpdate(b *hcl.Block, r *reader) *Update {
	c := d.blockContent(r, b.Body, updateSchema)
	at := c.Attributes
	u := &Update{DeclRange: b.DefRange, set: map[string]hcl.Range{}}
	for n, a := range at {
		u.set[n] = a.Expr.Range()
	}
	r.cronExpr(at, "schedule", &u.Schedule)
	r.oneOf(at, "policy", &u.Policy, UpdatePolicies...)
	r.boolean(at, "commit", &u.Commit)
	if r.str(at, "branch", &u.Branch) {
		if msg := checkBranch(u.Branch); msg != "" {
			r.attrError(at["branch"], "Invalid branch", "%s", msg)
		}
	}
	var author string
	if r.str(at, "author", &author) {
		addr, err := mail.ParseAddress(author)
		if err != nil || addr.Name == "" || strings.ContainsAny(addr.Name, "<>\n") {
			r.attrError(at["author"], "Invalid author", "%q is not an author: write it as git does, \"Name <email>\", such as \"tend bot <tend@example.com>\".", author)
		} else {
			u.AuthorName, u.AuthorEmail = addr.Name, addr.Address
		}
	}
	d.updateSigningKey(u, at, r)
	return u
}

// updateSigningKey decodes signing_key: a sensitive value (never written
// in the repository) that holds an armored OpenPGP private key with no
// passphrase. The key's text never appears in a diagnostic.
func (d *decoder) updateSigningKey(u *Update, at hcl.Attributes, r *reader) {
	a, ok := at["signing_key"]
	if !ok {
		return
	}
	var v Value
	if !r.value(at, "signing_key", &v) {
		if !v.IsKnown() {
			u.SigningKey = &v // a secret known only at run time
		}
		return
	}
	if !v.IsSensitive() {
		d.errorf(a.Expr.Range().Ptr(), "Signing key in plain text",
			"A signing key must not be in the repository: use signing_key = secret(\"NAME\") (from TEND_SECRET_NAME), or a sensitive variable.")
		return
	}
	if msg := checkSigningKey(v.Reveal()); msg != "" {
		d.errorf(a.Expr.Range().Ptr(), "Invalid signing key", "%s", msg)
		return
	}
	u.SigningKey = &v
}

// checkSigningKey says what is wrong with an armored private key, without
// quoting it, or "".
func checkSigningKey(armored string) string {
	ents, err := openpgp.ReadArmoredKeyRing(strings.NewReader(armored))
	if err != nil || len(ents) == 0 {
		return "The signing key is not an armored OpenPGP key (-----BEGIN PGP PRIVATE KEY BLOCK-----, as gpg --armor --export-secret-keys writes it)."
	}
	pk := ents[0].PrivateKey
	switch {
	case pk == nil:
		return "The signing key is a public key: give the private key (gpg --armor --export-secret-keys)."
	case pk.Encrypted:
		return "The signing key is protected by a passphrase, which tend cannot type: export a key without one for tend (a subkey for signing alone is enough)."
	}
	return ""
}

// checkBranch says what is wrong with a branch name, or "".
func checkBranch(b string) string {
	bad := b == "" || strings.HasPrefix(b, "-") || strings.HasPrefix(b, "/") || strings.HasSuffix(b, "/") ||
		strings.HasSuffix(b, ".lock") || strings.HasSuffix(b, ".") || strings.Contains(b, "..") ||
		strings.Contains(b, "//") || strings.Contains(b, "@{") || strings.ContainsAny(b, " ~^:?*[\\\t\n")
	if bad || strings.HasPrefix(b, "refs/") {
		return fmt.Sprintf("%q is not a branch name: write it as git push does, such as \"main\" or \"tend/updates\" (without refs/heads/).", b)
	}
	return ""
}

// UpdateOf returns the update settings in effect for a server: its update
// block over the tend block's, attribute by attribute, with the defaults
// filled in. It is nil when neither block is there, or the server's
// version is exact (there is nothing to update).
func (c *Config) UpdateOf(name string) *Update {
	s := c.Servers[name]
	if s == nil || s.Constraint == nil {
		return nil
	}
	return mergeUpdate(c.Tend.Update, s.Update)
}

func mergeUpdate(base, over *Update) *Update {
	if base == nil && over == nil {
		return nil
	}
	out := &Update{Policy: DefaultUpdatePolicy, set: map[string]hcl.Range{}}
	for _, u := range []*Update{base, over} {
		if u == nil {
			continue
		}
		out.DeclRange = u.DeclRange
		for n, rng := range u.set {
			out.set[n] = rng
			switch n {
			case "schedule":
				out.Schedule = u.Schedule
			case "policy":
				if u.Policy != "" {
					out.Policy = u.Policy
				}
			case "commit":
				out.Commit = u.Commit
			case "branch":
				out.Branch = u.Branch
			case "author":
				out.AuthorName, out.AuthorEmail = u.AuthorName, u.AuthorEmail
			case "signing_key":
				out.SigningKey = u.SigningKey
			}
		}
	}
	if out.AuthorName == "" {
		out.AuthorName, out.AuthorEmail = "tend", "tend@localhost"
	}
	return out
}

// checkUpdates refuses update settings that would do nothing or cannot
// be done: an update block on a server with an exact version, settings
// with no schedule, and the settings of commits where nothing commits.
func (d *decoder) checkUpdates() {
	t := d.cfg.Tend.Update
	if t != nil {
		d.commitOnly(t, t.Commit, "the tend block's")
	}
	tendNoSchedule := false
	for _, n := range sortedKeys(d.cfg.Servers) {
		s := d.cfg.Servers[n]
		u := s.Update
		if u != nil && s.Constraint == nil && s.Version != "" {
			d.errorf(u.DeclRange.Ptr(), "Update of an exact version",
				"Server %q runs the exact version %q, so there is nothing for its update block to update. Give a constraint (such as version = \"~> %s\") with a release source, or remove the update block.", n, s.Version, s.Version)
			continue
		}
		eff := d.cfg.UpdateOf(n)
		if eff == nil {
			continue
		}
		if u != nil {
			d.commitOnly(u, eff.Commit, fmt.Sprintf("server %q's", n))
		}
		if eff.Schedule != "" || eff.Has("schedule") {
			continue // set, or set and refused already
		}
		switch {
		case u != nil:
			d.errorf(u.DeclRange.Ptr(), "Update without a schedule",
				"The update settings of server %q have no schedule: say when tend run looks for new releases, such as schedule = \"0 4 * * *\", here or in the tend block's update block.", n)
		case !tendNoSchedule:
			tendNoSchedule = true
			d.errorf(t.DeclRange.Ptr(), "Update without a schedule",
				"The tend block's update block has no schedule, and server %q takes it without one of its own: say when tend run looks for new releases, such as schedule = \"0 4 * * *\".", n)
		}
	}
}

// commitOnly refuses branch, author and signing_key in a block whose
// settings in effect do not commit.
func (d *decoder) commitOnly(u *Update, commit bool, whose string) {
	if commit {
		return
	}
	for _, n := range []string{"branch", "author", "signing_key"} {
		if rng, ok := u.set[n]; ok {
			d.errorf(&rng, "Commit setting without commit",
				"%s is a setting of update commits, and %s update settings do not commit (commit = true makes tend run commit the upgraded lock file; without it tend only reports).", n, whose)
			return
		}
	}
}
