package spec_test

import (
	"testing"

	"github.com/tendhq/tend/spec"
)

// TestFleetPromotesToProduction: the example fleet's production takes
// versions from staging and needs approvals for major versions and
// deletes; staging runs free; an empty environments list turns the rule
// off.
func TestFleetPromotesToProduction(t *testing.T) {
	load := func(env string, vars map[string]string) *spec.Config {
		t.Helper()
		cfg, _, diags := spec.Load("../examples/mcp-fleet", spec.Options{Env: env, Vars: vars, Environ: func(string) (string, bool) { return "", false }})
		if diags.HasErrors() {
			t.Fatal(diags.Error())
		}
		return cfg
	}
	prod, staging := load("production", nil), load("staging", nil)
	p := prod.PromotionRule("search")
	if p == nil || p.From != "staging" || p.Soak.Hours() != 1 || p.URL == "" || !p.Token.IsSensitive() {
		t.Fatalf("production's promotion rule for search: %+v", p)
	}
	if p := staging.PromotionRule("search"); p != nil {
		t.Errorf("staging has a promotion rule: %+v", p)
	}
	if p := load("production", map[string]string{"promotion_environments": "[]"}).PromotionRule("search"); p != nil {
		t.Errorf("environments = [] left the rule on: %+v", p)
	}
	kinds := func(rules []*spec.Approval) []string {
		var out []string
		for _, r := range rules {
			out = append(out, r.Changes...)
		}
		return out
	}
	if got := kinds(prod.ApprovalRules("search")); len(got) != 2 || got[0] != "major" || got[1] != "delete" {
		t.Errorf("production's approval rules for search: %v", got)
	}
	if got := kinds(staging.ApprovalRules("search")); len(got) != 0 {
		t.Errorf("staging's approval rules for search: %v", got)
	}
	if got := kinds(staging.ApprovalRules("postgres")); len(got) != 2 || got[0] != "version" {
		t.Errorf("the data-tier rule for postgres in staging: %v", got)
	}
}
