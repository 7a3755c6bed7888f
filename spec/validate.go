package spec

import (
	"fmt"
	"path"
	"regexp"
	"sort"
	"strings"

	"github.com/Masterminds/semver/v3"
	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"
)

// validate runs the checks that need the whole configuration: references
// between servers, dependency cycles, pins, and ports shared on a host.
func (d *decoder) validate() {
	servers := d.cfg.Servers
	names := sortedKeys(servers)
	refCheck := func(ref Ref, what string) bool {
		if _, ok := servers[ref.Name]; ok {
			return true
		}
		rng := ref.Range
		d.errorf(&rng, "Reference to an undeclared server",
			"%s refers to server %q, which is not declared.%s", what, ref.Name, didYouMean(ref.Name, names))
		return false
	}
	for _, name := range names {
		s := servers[name]
		for _, ref := range s.DependsOn {
			if ref.Name == name {
				rng := ref.Range
				d.errorf(&rng, "Server depends on itself", "The server %q lists itself in depends_on.", name)
				continue
			}
			refCheck(ref, "depends_on")
		}
		for _, req := range s.Requires {
			rng := req.DeclRange
			if req.Server == name {
				d.errorf(&rng, "Server pins itself", "A requires block names another server; %q cannot require itself.", name)
				continue
			}
			other, ok := servers[req.Server]
			if !ok {
				d.errorf(&rng, "Reference to an undeclared server",
					"requires names server %q, which is not declared.%s", req.Server, didYouMean(req.Server, names))
				continue
			}
			d.checkPin(s, req, other)
		}
	}
	for _, wn := range sortedKeys(d.cfg.Windows) {
		for _, ref := range d.cfg.Windows[wn].Servers {
			refCheck(ref, fmt.Sprintf("The window %q", wn))
		}
	}
	for _, an := range sortedKeys(d.cfg.Approvals) {
		for _, ref := range d.cfg.Approvals[an].Servers {
			refCheck(ref, fmt.Sprintf("The approval block %q", an))
		}
	}
	for _, nn := range sortedKeys(d.cfg.Notifies) {
		for _, ref := range d.cfg.Notifies[nn].Servers {
			refCheck(ref, fmt.Sprintf("The notify block %q", nn))
		}
	}
	d.checkCycles()
	d.checkHostPorts()
}

// checkPin reports a pin that the pinned server's version does not satisfy.
func (d *decoder) checkPin(s *Server, req *Requires, other *Server) {
	if req.Constraint == nil || other.Version == "" {
		return // unresolved versions are checked when they are resolved
	}
	v, err := semver.NewVersion(other.Version)
	if err != nil {
		return
	}
	if !req.Constraint.Check(v) && other.VersionConstraint != "" {
		rng := other.VersionRange
		d.errorf(&rng, "Locked version breaks a pin",
			"The server %q is locked at %s (for %q), and the server %q requires it at %s (at %s): run tend lock to resolve %q to a release that keeps the pin, or change one of the two.",
			other.Name, other.Version, other.VersionConstraint, s.Name, req.Version, req.VersionRange.String(), other.Name)
		return
	}
	if !req.Constraint.Check(v) {
		rng := req.VersionRange
		d.diags = append(d.diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Dependency pin not satisfied",
			Detail: fmt.Sprintf("The server %q requires %q at %s, but %q is at version %s (set at %s). Change one of the two versions.",
				s.Name, other.Name, req.Version, other.Name, other.Version, other.VersionRange.String()),
			Subject: &rng,
		})
	}
}

// Dependencies returns the names of the servers s depends on (depends_on
// and requires), sorted and without duplicates.
func (s *Server) Dependencies() []string {
	set := map[string]bool{}
	for _, r := range s.DependsOn {
		set[r.Name] = true
	}
	for _, r := range s.Requires {
		set[r.Server] = true
	}
	delete(set, s.Name)
	return sortedKeys(set)
}

// checkCycles finds dependency cycles and names each one.
func (d *decoder) checkCycles() {
	const (
		white = iota
		grey
		black
	)
	color := map[string]int{}
	var stack []string
	reported := map[string]bool{}
	var visit func(n string)
	visit = func(n string) {
		color[n] = grey
		stack = append(stack, n)
		s := d.cfg.Servers[n]
		for _, dep := range s.Dependencies() {
			if _, ok := d.cfg.Servers[dep]; !ok {
				continue
			}
			switch color[dep] {
			case white:
				visit(dep)
			case grey:
				i := len(stack) - 1
				for stack[i] != dep {
					i--
				}
				cycle := append(append([]string(nil), stack[i:]...), dep)
				key := canonicalCycle(cycle)
				if !reported[key] {
					reported[key] = true
					rng := d.depRange(s, dep)
					d.errorf(&rng, "Dependency cycle",
						"These servers depend on each other in a circle, so none can be started first: %s. Remove one of the dependencies (depends_on or requires).",
						strings.Join(cycle, " → "))
				}
			}
		}
		stack = stack[:len(stack)-1]
		color[n] = black
	}
	for _, n := range sortedKeys(d.cfg.Servers) {
		if color[n] == white {
			visit(n)
		}
	}
}

func canonicalCycle(c []string) string {
	nodes := append([]string(nil), c[:len(c)-1]...)
	sort.Strings(nodes)
	return strings.Join(nodes, ",")
}

// depRange is where s names dep: its depends_on item or requires block.
func (d *decoder) depRange(s *Server, dep string) hcl.Range {
	for _, r := range s.DependsOn {
		if r.Name == dep {
			return r.Range
		}
	}
	for _, r := range s.Requires {
		if r.Server == dep {
			return r.DeclRange
		}
	}
	return s.DeclRange
}

// checkHostPorts reports two servers that would listen on the same port of
// one host. Servers share a host when they use the same provider (other than
// kubernetes, where every pod has its own address) and their selectors can
// match the same host.
func (d *decoder) checkHostPorts() {
	type claim struct {
		server *Server
		port   Port
		lo, hi int
	}
	byProvider := map[string][]claim{}
	for _, n := range sortedKeys(d.cfg.Servers) {
		s := d.cfg.Servers[n]
		if s.ProviderType == "kubernetes" || s.Provider == "" {
			continue
		}
		for _, p := range s.Ports {
			byProvider[s.Provider] = append(byProvider[s.Provider], claim{s, p, p.Number, p.Number + replicaSpan(s) - 1})
		}
	}
	// Sweep the port ranges in order: only ranges still open when the next
	// one starts can overlap it, so a fleet of thousands of servers costs
	// O(n log n), not a comparison of every pair.
	for _, prov := range sortedKeys(byProvider) {
		claims := byProvider[prov]
		sort.SliceStable(claims, func(i, j int) bool { return claims[i].lo < claims[j].lo })
		var open []claim
		for _, b := range claims {
			kept := open[:0]
			for _, a := range open {
				if a.hi >= b.lo {
					kept = append(kept, a)
				}
			}
			open = kept
			for _, a := range open {
				if a.server == b.server {
					if a.port.Name == b.port.Name {
						continue
					}
				} else if !selectorsOverlap(a.server.Selector, b.server.Selector) {
					continue
				}
				rng := b.port.Range
				if a.server == b.server {
					d.errorf(&rng, "Ports overlap",
						"With %d replicas, the ports %q (%s) and %q (%s) of %q overlap: replica i listens on each port + i. Leave a gap of at least the replica count between them.",
						replicaSpan(a.server), a.port.Name, portSpan(a.lo, a.hi), b.port.Name, portSpan(b.lo, b.hi), a.server.Name)
					break
				}
				d.errorf(&rng, "Port already claimed on this host",
					"The servers %q and %q both listen on port %d of the hosts of %s (%q uses %s, %q uses %s). Give one of them another port, or selectors that put them on different hosts.",
					a.server.Name, b.server.Name, max(a.lo, b.lo), prov, a.server.Name, portSpan(a.lo, a.hi), b.server.Name, portSpan(b.lo, b.hi))
				break // one report per port is enough
			}
			open = append(open, b)
		}
	}
}

// replicaSpan is how many consecutive ports a server's replicas take on one
// host: replica i listens on port+i.
func replicaSpan(s *Server) int {
	n := s.Replicas
	if s.Scaling != nil && s.Scaling.Max > n {
		n = s.Scaling.Max
	}
	return max(n, 1)
}

func portSpan(lo, hi int) string {
	if lo == hi {
		return fmt.Sprint(lo)
	}
	return fmt.Sprintf("%d-%d", lo, hi)
}

// selectorsOverlap is false only when some label both selectors name is
// matched by two literal patterns that differ, so no host can satisfy both.
func selectorsOverlap(a, b map[string]string) bool {
	for k, va := range a {
		vb, ok := b[k]
		if !ok {
			continue
		}
		if !strings.ContainsAny(va, "*?[") && !strings.ContainsAny(vb, "*?[") && va != vb {
			return false
		}
		if strings.ContainsAny(va, "*?[") != strings.ContainsAny(vb, "*?[") {
			lit, pat := va, vb
			if strings.ContainsAny(va, "*?[") {
				lit, pat = vb, va
			}
			if ok, err := path.Match(pat, lit); err == nil && !ok {
				return false
			}
		}
	}
	return true
}

func compileRegex(s string) (*regexp.Regexp, error) { return regexp.Compile(s) }

// encodeJSONValue renders a cty value as JSON text, keeping sensitivity.
func encodeJSONValue(v cty.Value) Value {
	uv, marks := v.UnmarkDeep()
	b, err := ctyjson.Marshal(uv, uv.Type())
	if err != nil {
		return Plain("{}")
	}
	return Value{v: string(b), sensitive: len(marks) > 0}
}
