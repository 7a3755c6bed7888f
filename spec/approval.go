package spec

import (
	"fmt"
	"path/filepath"
	"slices"
	"time"

	"github.com/hashicorp/hcl/v2"
)

// Kinds of change an approval block can ask an approval for.
const (
	// ApproveAll: every change of the desired revision (create, update,
	// replace, scale, delete). Heals of drift and crashes are not changes
	// of the desired revision: they put back what was approved.
	ApproveAll = "all"
	// ApproveCreate: a new server.
	ApproveCreate = "create"
	// ApproveVersion: any change of the version (up or down).
	ApproveVersion = "version"
	// ApproveMajor: a major version bump, or a downgrade.
	ApproveMajor = "major"
	// ApproveDelete: a server that leaves the desired state (pruned).
	ApproveDelete = "delete"
)

// ApprovalChanges are the kinds of change an approval block names.
var ApprovalChanges = []string{ApproveAll, ApproveCreate, ApproveVersion, ApproveMajor, ApproveDelete}

// Approval is an approval rule: which changes of which servers wait for a
// person to run `tend approve`. It is an `approval {}` block in tend {} (every
// server), in a server, or a top-level `approval "NAME" {}` block whose
// servers attribute selects servers (all of them when it is absent).
type Approval struct {
	Name    string   `json:"name,omitempty"` // top-level blocks only
	Changes []string `json:"changes"`
	// Environments, when set, limit the rule to a tend that runs with one
	// of these environments (--env, TEND_ENV); an empty list, to none.
	Environments []string  `json:"environments,omitempty"`
	Servers      []Ref     `json:"servers,omitempty"` // top-level blocks only; nil: every server
	DeclRange    hcl.Range `json:"-"`
}

// InEnv reports whether the rule is in force for a tend running with env.
func (a *Approval) InEnv(env string) bool {
	return a.Environments == nil || slices.Contains(a.Environments, env)
}

// Covers reports whether a top-level rule selects server.
func (a *Approval) Covers(server string) bool {
	return a.Servers == nil || slices.ContainsFunc(a.Servers, func(r Ref) bool { return r.Name == server })
}

// Promotion is a `promotion {}` block (in tend {} or a server): a version is
// applied only after the server was verified at that version in the From
// environment at least Soak ago. That environment's history is read from
// the other tend's HTTP API (URL, Token) or from its state directory (Store,
// opened read-only), exactly one of them.
type Promotion struct {
	From  string        `json:"from"`
	Soak  time.Duration `json:"soak"`
	URL   string        `json:"url,omitempty"`
	Token Value         `json:"token"`
	Store string        `json:"store,omitempty"`
	// Environments, when set, limit the rule to a tend that runs with one
	// of these environments; an empty list, to none.
	Environments []string  `json:"environments,omitempty"`
	DeclRange    hcl.Range `json:"-"`
}

// InEnv reports whether the rule is in force for a tend running with env.
func (p *Promotion) InEnv(env string) bool {
	return p.Environments == nil || slices.Contains(p.Environments, env)
}

// ApprovalRules returns the approval rules in force for server in cfg's
// environment: tend {}'s, the server's own and the top-level blocks that
// select it.
func (c *Config) ApprovalRules(server string) []*Approval {
	var out []*Approval
	add := func(a *Approval) {
		if a != nil && a.InEnv(c.Env) && a.Covers(server) {
			out = append(out, a)
		}
	}
	add(c.Tend.Approval)
	if s := c.Servers[server]; s != nil {
		add(s.Approval)
	}
	for _, n := range sortedKeys(c.Approvals) {
		add(c.Approvals[n])
	}
	return out
}

// PromotionRule returns the promotion rule in force for server in cfg's
// environment: the server's own, else tend {}'s; nil for none.
func (c *Config) PromotionRule(server string) *Promotion {
	if s := c.Servers[server]; s != nil && s.Promotion != nil {
		if s.Promotion.InEnv(c.Env) {
			return s.Promotion
		}
		return nil
	}
	if p := c.Tend.Promotion; p != nil && p.InEnv(c.Env) {
		return p
	}
	return nil
}

var (
	approvalSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
		{Name: "changes"}, {Name: "environments"},
	}}
	topApprovalSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
		{Name: "changes"}, {Name: "environments"}, {Name: "servers"},
	}}
	promotionSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
		{Name: "from", Required: true}, {Name: "soak"}, {Name: "url"}, {Name: "token"},
		{Name: "store"}, {Name: "environments"},
	}}
)

// decodeApproval decodes an approval block of tend {} or a server (top
// is false), or a top-level one.
func (d *decoder) decodeApproval(b *hcl.Block, r *reader, top bool) *Approval {
	schema := approvalSchema
	if top {
		schema = topApprovalSchema
	}
	c := d.blockContent(r, b.Body, schema)
	a := &Approval{Changes: []string{ApproveAll}, DeclRange: b.DefRange}
	at := c.Attributes
	if r.strings(at, "changes", &a.Changes) {
		rng := at["changes"].Expr.Range().Ptr()
		if len(a.Changes) == 0 {
			d.errorf(rng, "No changes to approve", "changes lists the kinds of change that wait for an approval: %s. Remove the approval block for none.", quoteList(ApprovalChanges))
		}
		for _, k := range a.Changes {
			if !contains(ApprovalChanges, k) {
				detail := fmt.Sprintf("%q is not a kind of change; approval blocks know %s.%s", k, quoteList(ApprovalChanges), didYouMean(k, ApprovalChanges))
				if k == "contract" || k == "breaking" {
					detail += " A change's API contract is known only once the new version runs, after the plan; gate on \"major\", and set contract = \"enforce\" on the server so that a release that breaks its contract without a major version fails and is rolled back."
				}
				d.errorf(rng, "Unknown kind of change", "%s", detail)
			}
		}
	}
	r.strings(at, "environments", &a.Environments)
	if top {
		r.refs(at, "servers", "server", &a.Servers)
	}
	return a
}

// decodePromotion decodes a promotion block of tend {} or a server.
func (d *decoder) decodePromotion(b *hcl.Block, r *reader) *Promotion {
	c := d.blockContent(r, b.Body, promotionSchema)
	p := &Promotion{DeclRange: b.DefRange}
	at := c.Attributes
	r.strings(at, "environments", &p.Environments)
	if r.str(at, "from", &p.From) {
		if p.From == "" {
			d.errorf(at["from"].Expr.Range().Ptr(), "Invalid value for from", "from names the environment a version must be verified in first, such as \"staging\".")
		} else if p.From == d.cfg.Env && p.InEnv(d.cfg.Env) {
			d.errorf(at["from"].Expr.Range().Ptr(), "Promotion from the environment itself",
				"This tend runs the %q environment; a version is promoted to it from another one. Limit the block with environments = [...] to the environments that take versions from %q.", p.From, p.From)
		}
	}
	r.duration(at, "soak", &p.Soak)
	hasURL := r.str(at, "url", &p.URL)
	hasStore := r.str(at, "store", &p.Store)
	r.value(at, "token", &p.Token)
	switch {
	case hasURL && hasStore:
		d.errorf(b.DefRange.Ptr(), "Two sources of history", "A promotion block reads the history of %q from the other tend's API (url, token) or from its state directory (store), not both.", p.From)
	case !hasURL && !hasStore && at["url"] == nil && at["store"] == nil:
		d.errorf(b.DefRange.Ptr(), "No source of history", "A promotion block says where the history of %q is: url = the address of the tend that runs it (tend run --listen) with token = secret(\"NAME\") (its TEND_API_TOKEN), or store = the absolute path of its state directory, when both tends share a machine or a volume.", p.From)
	}
	if hasURL && !validURL(p.URL) {
		d.errorf(at["url"].Expr.Range().Ptr(), "Invalid URL", "url is the address of the other tend's HTTP side, an http:// or https:// URL such as \"https://tend-staging.example.com:8440\", not %q.", p.URL)
	}
	if hasStore && !filepath.IsAbs(p.Store) {
		d.errorf(at["store"].Expr.Range().Ptr(), "Relative store path", "store is the other tend's state directory (its --state-dir), an absolute path; %q would depend on where tend runs.", p.Store)
	}
	tok, hasTok := at["token"]
	switch {
	case hasTok && hasStore && !hasURL:
		d.errorf(tok.Expr.Range().Ptr(), "Token without url", "token is the other tend's API token, sent to url; a store is read from disk and needs none.")
	case hasTok && p.Token.IsKnown() && !p.Token.IsSensitive() && p.Token.Reveal() != "":
		// (An unset secret, in a strict load, is reported as such and
		// leaves an empty value: it is not a token in plain text.)
		d.errorf(tok.Expr.Range().Ptr(), "Token in plain text", "An API token must not be in the repository: use token = secret(\"NAME\") (from TEND_SECRET_NAME), or a sensitive variable.")
	case hasURL && !hasTok:
		d.errorf(at["url"].Expr.Range().Ptr(), "Missing token", "The API of tend run answers only with its token: add token = secret(\"NAME\"), the TEND_API_TOKEN of the tend at %s.", p.URL)
	}
	return p
}

// decodeTopApprovals decodes the top-level approval "NAME" {} blocks.
func (d *decoder) decodeTopApprovals(blocks []*hcl.Block) {
	for _, b := range blocks {
		name := b.Labels[0]
		if !validName(name) {
			d.errorf(b.LabelRanges[0].Ptr(), "Invalid approval name", "%q is not a valid name: %s", name, nameRule)
			continue
		}
		if prev, ok := d.cfg.Approvals[name]; ok {
			d.errorf(b.DefRange.Ptr(), fmt.Sprintf("Duplicate approval %q", name),
				"An approval block named %q was already declared at %s. Names must be unique across all files of the repository.", name, prev.DeclRange.String())
			continue
		}
		a := d.decodeApproval(b, d.reader(d.ctx), true)
		a.Name = name
		d.cfg.Approvals[name] = a
	}
}

// decodeGovernance decodes the approval and promotion blocks of a tend or
// server body: at most one of each.
func (d *decoder) decodeGovernance(blocks hcl.Blocks, r *reader, where string) (*Approval, *Promotion) {
	var a *Approval
	var p *Promotion
	var firstA, firstP *hcl.Block
	for _, b := range blocks {
		switch b.Type {
		case "approval":
			if firstA != nil {
				d.errorf(b.DefRange.Ptr(), "Duplicate approval block", "%s has at most one approval block; the first is at %s. List every kind of change in its changes.", where, firstA.DefRange.String())
				continue
			}
			firstA = b
			a = d.decodeApproval(b, r, false)
		case "promotion":
			if firstP != nil {
				d.errorf(b.DefRange.Ptr(), "Duplicate promotion block", "%s has at most one promotion block; the first is at %s.", where, firstP.DefRange.String())
				continue
			}
			firstP = b
			p = d.decodePromotion(b, r)
		}
	}
	return a, p
}
