package versions

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/Masterminds/semver/v3"
	"github.com/hashicorp/hcl/v2"

	"github.com/tendhq/tend/spec"
)

// VetInput names the servers a plan would deploy (start replicas of a new
// desired state: create, update, replace).
type VetInput struct {
	Config  *spec.Config
	Servers []string
	// HTTP is the client of index and advisory URLs; http.DefaultClient
	// when nil.
	HTTP *http.Client
	// Parallelism bounds the servers checked at once (default 16).
	Parallelism int
}

// Vet checks the releases a plan would deploy, and only those, so that a
// plan of thousands of unchanged servers asks nothing:
//
//   - a server whose version comes from the lock file: its source must
//     still give the locked digest for the locked version (a tag pushed
//     again, a build replaced, a release gone are errors at the version
//     attribute naming both digests; a source that cannot be reached is
//     an error too, as nothing could be verified). Each source is asked
//     once per Vet (one tag list per repository);
//   - with tend { advisories }, a server whose package an advisory
//     affects at the version it would deploy: a warning at its version
//     attribute, or an error when block_vulnerable is true (the server's,
//     else the tend block's).
func Vet(ctx context.Context, in VetInput) hcl.Diagnostics {
	cfg := in.Config
	var servers []*spec.Server
	for _, n := range in.Servers {
		if s := cfg.Servers[n]; s != nil {
			servers = append(servers, s)
		}
	}
	sort.Slice(servers, func(i, j int) bool { return servers[i].Name < servers[j].Name })
	diags := vetDigests(ctx, cfg, servers, in)
	return append(diags, vetAdvisories(ctx, cfg, servers, in.HTTP)...)
}

func vetDigests(ctx context.Context, cfg *spec.Config, servers []*spec.Server, in VetInput) hcl.Diagnostics {
	var locked []*spec.Server
	for _, s := range servers {
		if s.Locked != nil && s.Release != nil && s.Release.String() == s.Locked.Source {
			locked = append(locked, s)
		}
	}
	if len(locked) == 0 {
		return nil
	}
	res := &Resolver{HTTP: in.HTTP, Keychain: ConfigKeychain(cfg)}
	par := in.Parallelism
	if par <= 0 {
		par = 16
	}
	out := make([]*hcl.Diagnostic, len(locked))
	sem := make(chan struct{}, par)
	var wg sync.WaitGroup
	for i, s := range locked {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			out[i] = vetDigest(ctx, res, s)
		}()
	}
	wg.Wait()
	var diags hcl.Diagnostics
	for _, d := range out {
		if d != nil {
			diags = append(diags, d)
		}
	}
	return diags
}

// vetDigest compares one server's locked digest with its source.
func vetDigest(ctx context.Context, res *Resolver, s *spec.Server) *hcl.Diagnostic {
	ls := s.Locked
	rng := s.VersionRange
	src := redact(ls.Source)
	fail := func(summary, detail string, args ...any) *hcl.Diagnostic {
		return &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: fmt.Sprintf(detail, args...), Subject: &rng}
	}
	rs, _, err := res.Releases(ctx, s.Release)
	if err != nil {
		return fail("Cannot verify the locked release",
			"Server %q would deploy %s, locked at %s (%s), and %s cannot be read to verify it: %v. Nothing that cannot be verified is deployed.", s.Name, ls.Version, ls.Digest, ls.VersionRange, src, err)
	}
	var found *Release
	for i := range rs {
		if rs[i].Version.String() == ls.Version {
			found = &rs[i]
			break
		}
	}
	if found == nil {
		return fail("Locked release gone",
			"Server %q would deploy %s, locked at %s (%s), and %s no longer lists %s: run tend lock -upgrade %s.", s.Name, ls.Version, ls.Digest, ls.VersionRange, src, ls.Version, s.Name)
	}
	d, err := res.Digest(ctx, s.Release, *found)
	if err != nil {
		return fail("Cannot verify the locked release",
			"Server %q would deploy %s, locked at %s (%s), and the digest of %s from %s cannot be read: %v.", s.Name, ls.Version, ls.Digest, ls.VersionRange, found.Tag, src, err)
	}
	if d != ls.Digest {
		return fail("Locked digest mismatch",
			"Server %q would deploy %s: the lock file (%s) records %s, and %s now gives %s for %s. The release moved (a tag pushed again, a build replaced); review it, then run tend lock -upgrade %s to lock the new digest.",
			s.Name, ls.Version, ls.VersionRange, ls.Digest, src, d, found.Tag, s.Name)
	}
	return nil
}

func vetAdvisories(ctx context.Context, cfg *spec.Config, servers []*spec.Server, client *http.Client) hcl.Diagnostics {
	adv := cfg.Tend.Advisories
	if adv == nil {
		return nil
	}
	var named []*spec.Server
	anyBlocks := false
	for _, s := range servers {
		if s.Package != "" && s.Version != "" {
			named = append(named, s)
			anyBlocks = anyBlocks || blocks(cfg, s)
		}
	}
	if len(named) == 0 {
		return nil
	}
	rng := adv.Range
	db, err := LoadAdvisories(ctx, adv.Source, client)
	if err != nil {
		sev, then := hcl.DiagWarning, "the plan goes on without them."
		if anyBlocks {
			sev, then = hcl.DiagError, "block_vulnerable is true, and what cannot be checked is not deployed."
		}
		return hcl.Diagnostics{{Severity: sev, Summary: "Cannot read the advisories", Detail: fmt.Sprintf("%v; %s", err, then), Subject: &rng}}
	}
	var diags hcl.Diagnostics
	for _, s := range named {
		diags = append(diags, vetServerAdvisories(cfg, s, db)...)
	}
	return diags
}

func blocks(cfg *spec.Config, s *spec.Server) bool {
	if s.BlockVulnerable != nil {
		return *s.BlockVulnerable
	}
	return cfg.Tend.BlockVulnerable
}

func vetServerAdvisories(cfg *spec.Config, s *spec.Server, db *Advisories) hcl.Diagnostics {
	rng := s.VersionRange
	pkg, err := spec.ParsePURL(s.Package)
	if err != nil {
		return nil // validate reports it
	}
	v, err := semver.NewVersion(s.Version)
	if err != nil {
		return nil
	}
	found, errs := db.Check(pkg, v, s.Constraint, s.VersionConstraint)
	block := blocks(cfg, s)
	var diags hcl.Diagnostics
	for _, e := range errs {
		sev := hcl.DiagWarning
		if block {
			sev = hcl.DiagError
		}
		diags = append(diags, &hcl.Diagnostic{Severity: sev, Summary: "Cannot evaluate an advisory", Detail: fmt.Sprintf("Server %q (%s): %v.", s.Name, s.Package, e), Subject: &rng})
	}
	for _, f := range found {
		d := &hcl.Diagnostic{Severity: hcl.DiagWarning, Summary: "Vulnerable version", Subject: &rng}
		if block {
			d.Severity, d.Summary = hcl.DiagError, "Vulnerable version refused"
		}
		d.Detail = fmt.Sprintf("Server %q would deploy %s of %s, and advisory %s.", s.Name, s.Version, s.Package, DescribeFinding(f))
		if block {
			d.Detail += " block_vulnerable = true refuses it."
		}
		diags = append(diags, d)
	}
	return diags
}

// DescribeFinding says what a finding is, after "advisory": its id and
// aliases, its summary, its severity as given, and the fix.
func DescribeFinding(f Finding) string {
	var b strings.Builder
	b.WriteString(f.ID)
	if len(f.Aliases) > 0 {
		b.WriteString(" (" + strings.Join(f.Aliases, ", ") + ")")
	}
	b.WriteString(" affects it")
	if f.Summary != "" {
		b.WriteString(": " + f.Summary)
	}
	if sev := SeverityText(f.Severity); sev != "" {
		b.WriteString(". Severity: " + sev)
	}
	switch {
	case f.Fixed != "" && f.Constraint != "":
		b.WriteString(". Fixed in " + f.Fixed + ", which " + strconv.Quote(f.Constraint) + " allows")
	case f.Fixed != "":
		b.WriteString(". Fixed in " + f.Fixed)
	case f.FixedNote != "":
		b.WriteString(". Not fixed: " + f.FixedNote)
	}
	return b.String()
}

// SeverityText joins severities as given: "CVSS_V3 CVSS:3.1/AV:N/…; HIGH".
func SeverityText(ss []Severity) string {
	parts := make([]string, 0, len(ss))
	for _, s := range ss {
		if s.Type == "database_specific" {
			parts = append(parts, s.Score)
		} else {
			parts = append(parts, s.Type+" "+s.Score)
		}
	}
	return strings.Join(parts, "; ")
}
