package capacity

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"

	"github.com/tendhq/tend/providers"
	"github.com/tendhq/tend/spec"
)

// Compute builds the report. It does no I/O.
func Compute(in Input) *Report {
	r := &Report{Hosts: []*Host{}}
	if in.Config == nil {
		return r
	}
	r.OvercommitPercent = in.Config.Tend.OvercommitPercent
	byProvider := map[string][]*spec.Server{}
	for _, name := range Selected(in.Config, in.Selects) {
		s := in.Config.Servers[name]
		byProvider[s.Provider] = append(byProvider[s.Provider], s)
	}
	keys := map[string]bool{}
	for k := range byProvider {
		keys[k] = true
	}
	for k := range in.Capacities {
		keys[k] = true
	}
	hostOf := map[string]*Host{} // by provider key
	byName := map[string]*Host{}
	for _, key := range slices.Sorted(maps.Keys(keys)) {
		c, ok := in.Capacities[key]
		if !ok || (!c.Cluster && len(c.Hosts) == 0) {
			r.unknown(in, key, c, ok, byProvider[key])
			continue
		}
		hostOf[key] = r.hostFor(key, c, byName)
	}
	for _, key := range slices.Sorted(maps.Keys(hostOf)) {
		h := hostOf[key]
		for _, s := range byProvider[key] {
			h.Servers = append(h.Servers, newServer(s, in))
		}
	}
	for _, h := range r.Hosts {
		slices.SortStableFunc(h.Servers, func(a, b *Server) int { return strings.Compare(a.Name, b.Name) })
		r.check(h, in.Current != nil)
	}
	return r
}

// unknown records a provider whose capacity is not known, and a finding
// when it could not be read and has servers to check.
func (r *Report) unknown(in Input, key string, c providers.Capacity, answered bool, servers []*spec.Server) {
	u := &Unknown{Provider: key, Reason: "its capacity was not read"}
	switch err := in.Errors[key]; {
	case err != nil:
		u.Reason = err.Error()
	case answered && len(c.Hosts) == 0:
		u.Reason = "it reported no host"
	}
	sized := 0
	for _, s := range servers {
		u.Servers = append(u.Servers, s.Name)
		if Sized(s) {
			sized++
		}
	}
	r.Unknown = append(r.Unknown, u)
	if (in.Errors[key] == nil && !answered) || sized == 0 {
		return
	}
	f := &Finding{Severity: SeverityWarning, Summary: "Capacity unknown",
		Detail: fmt.Sprintf("The capacity of %s is not known, so %d %s on it could not be checked: %s.",
			key, sized, plural(sized, "server", "servers"), strings.TrimSuffix(u.Reason, "."))}
	if p := in.Config.Providers[key]; p != nil {
		rng := p.DeclRange
		f.Range = &rng
	}
	r.Findings = append(r.Findings, f)
}

// hostFor returns the host of a provider's capacity: a cluster of its own,
// or the host of that name, shared with the providers that reported it
// before (with the smaller of their figures).
func (r *Report) hostFor(key string, c providers.Capacity, byName map[string]*Host) *Host {
	if c.Cluster || len(c.Hosts) > 1 {
		h := &Host{Name: key, Providers: []string{key}, Cluster: true, Nodes: len(c.Hosts)}
		for _, n := range c.Hosts {
			a := sane(n)
			h.nodes = append(h.nodes, a)
			h.Capacity = h.Capacity.Add(a)
		}
		r.Hosts = append(r.Hosts, h)
		return h
	}
	hc := c.Hosts[0]
	a := sane(hc)
	if h, ok := byName[hc.Name]; ok {
		h.Providers = append(h.Providers, key)
		h.Capacity = lower(h.Capacity, a)
		return h
	}
	h := &Host{Name: hc.Name, Providers: []string{key}, Capacity: a}
	byName[hc.Name] = h
	r.Hosts = append(r.Hosts, h)
	return h
}

// maxFigure bounds a host's figures: no host has more (4 EiB, or 4.6
// million million cores), and a request that saturates int64 is then
// always beyond it.
const maxFigure = math.MaxInt64 / 2

// sane is a host's capacity, its figures between 0 and maxFigure.
func sane(hc providers.HostCapacity) Amount {
	return Amount{min(max(hc.MilliCPU, 0), maxFigure), min(max(hc.MemoryBytes, 0), maxFigure)}
}

func newServer(s *spec.Server, in Input) *Server {
	out := &Server{Name: s.Name, Provider: s.Provider, Replicas: max(s.Replicas, 0), Range: s.DeclRange}
	out.MaxReplicas, out.scaled = MaxReplicas(s)
	if in.Current != nil {
		n := max(in.Current[s.Name], 0)
		out.Current = &n
	}
	if u, ok := in.Usage[s.Name]; ok && !u.IsZero() {
		out.Used = &u
	}
	if !Sized(s) {
		return out
	}
	per := Amount{max(s.Resources.MilliCPU, 0), max(s.Resources.MemoryBytes, 0)}
	out.PerReplica = &per
	atMax := per.Times(out.MaxReplicas)
	out.RequestedAtMax = &atMax
	if out.Current != nil {
		now := per.Times(*out.Current)
		out.RequestedNow = &now
	}
	return out
}

// check sums a host's requests and use, places its servers and records
// its findings.
func (r *Report) check(h *Host, observed bool) {
	if observed {
		h.RequestedNow = &Amount{}
	}
	for _, s := range h.Servers {
		if s.Used != nil {
			h.Sampled++
			h.Used = addUsage(h.Used, *s.Used)
		}
		if s.PerReplica == nil {
			h.Unsized = append(h.Unsized, s.Name)
			continue
		}
		h.RequestedAtMax = h.RequestedAtMax.Add(*s.RequestedAtMax)
		if h.RequestedNow != nil && s.RequestedNow != nil {
			*h.RequestedNow = h.RequestedNow.Add(*s.RequestedNow)
		}
	}
	h.Headroom = h.Capacity.Sub(h.RequestedAtMax)
	if r.OvercommitPercent > 0 {
		l := h.Capacity.Percent(r.OvercommitPercent)
		h.Limit = &l
	}
	if h.Cluster && h.Nodes == 0 {
		r.noNodes(h)
		return
	}
	tooBig := r.checkNodes(h)
	fits := place(h.Servers, h.Capacity, tooBig)
	var within map[*Server]int
	if h.Limit != nil {
		within = place(h.Servers, *h.Limit, tooBig)
	}
	for _, s := range h.Servers {
		n, ok := fits[s]
		if !ok {
			continue
		}
		s.Fits = &n
		if n >= s.MaxReplicas || tooBig[s] {
			continue
		}
		h.WouldNotFit = append(h.WouldNotFit, s.Name)
		sev := SeverityWarning
		if within != nil && within[s] < s.MaxReplicas {
			sev = SeverityError
		}
		r.Findings = append(r.Findings, r.notFit(h, s, sev))
	}
	slices.Sort(h.WouldNotFit)
}

func addUsage(a, b Usage) Usage {
	add := func(x, y *Amount) *Amount {
		switch {
		case y == nil:
			return x
		case x == nil:
			c := *y
			return &c
		}
		s := x.Add(*y)
		return &s
	}
	return Usage{Now: add(a.Now, b.Now), Replicas: a.Replicas + b.Replicas, Avg: add(a.Avg, b.Avg), Peak: add(a.Peak, b.Peak), Samples: a.Samples + b.Samples}
}

// place puts the sized servers on a host of capacity limit, by name: first
// every server's replicas, then every server's growth to its max. It
// returns how many replicas of each got a place. Servers in skip get none.
func place(servers []*Server, limit Amount, skip map[*Server]bool) map[*Server]int {
	out := map[*Server]int{}
	left := limit
	take := func(s *Server, want int) {
		n := want
		per := *s.PerReplica
		if limit.MilliCPU > 0 && per.MilliCPU > 0 {
			n = min(n, int(min(max(left.MilliCPU, 0)/per.MilliCPU, int64(want))))
		}
		if limit.MemoryBytes > 0 && per.MemoryBytes > 0 {
			n = min(n, int(min(max(left.MemoryBytes, 0)/per.MemoryBytes, int64(want))))
		}
		n = max(n, 0)
		left = left.Sub(per.Times(n))
		out[s] += n
	}
	for _, s := range servers {
		if s.PerReplica != nil {
			out[s] = 0
			if !skip[s] {
				take(s, min(s.Replicas, s.MaxReplicas))
			}
		}
	}
	for _, s := range servers {
		if s.PerReplica != nil && !skip[s] {
			take(s, s.MaxReplicas-min(s.Replicas, s.MaxReplicas))
		}
	}
	return out
}

// checkNodes finds, on a cluster, the servers one replica of which no node
// can hold, and records a finding for each.
func (r *Report) checkNodes(h *Host) map[*Server]bool {
	out := map[*Server]bool{}
	if !h.Cluster {
		return out
	}
	for _, s := range h.Servers {
		if s.PerReplica == nil || s.MaxReplicas == 0 {
			continue
		}
		fitsOne := false
		var most Amount
		for _, n := range h.nodes {
			most = Amount{max(most.MilliCPU, n.MilliCPU), max(most.MemoryBytes, n.MemoryBytes)}
			if !s.PerReplica.Exceeds(n) {
				fitsOne = true
				break
			}
		}
		if fitsOne {
			continue
		}
		out[s] = true
		h.WouldNotFit = append(h.WouldNotFit, s.Name)
		sev := SeverityWarning
		if r.OvercommitPercent > 0 {
			sev = SeverityError
		}
		rng := s.Range
		r.Findings = append(r.Findings, &Finding{
			Severity: sev, Host: h.Name, Server: s.Name, Range: &rng,
			Summary: "Replica larger than any node",
			Detail: fmt.Sprintf("One replica of %q asks for %s, and no schedulable node of %s can hold that (the largest offer %s): its pods would stay Pending. Make its resources smaller, or add a larger node.",
				s.Name, describe(*s.PerReplica, *s.PerReplica), h.Name, describe(most, *s.PerReplica)),
		})
	}
	return out
}

// noNodes records that a cluster has no node to schedule on.
func (r *Report) noNodes(h *Host) {
	for _, s := range h.Servers {
		if s.PerReplica == nil || s.MaxReplicas == 0 {
			continue
		}
		zero := 0
		s.Fits = &zero
		h.WouldNotFit = append(h.WouldNotFit, s.Name)
		rng := s.Range
		sev := SeverityWarning
		if r.OvercommitPercent > 0 {
			sev = SeverityError
		}
		r.Findings = append(r.Findings, &Finding{
			Severity: sev, Host: h.Name, Server: s.Name, Range: &rng,
			Summary: "No schedulable node",
			Detail:  fmt.Sprintf("The cluster of %s has no node that takes tend's pods (every node is cordoned or tainted), so no replica of %q can be scheduled.", h.Name, s.Name),
		})
	}
}

// notFit is the finding of a server that would not fit on its host.
func (r *Report) notFit(h *Host, s *Server, sev string) *Finding {
	where := fmt.Sprintf("host %q (%s)", h.Name, strings.Join(h.Providers, ", "))
	if h.Cluster {
		where = fmt.Sprintf("the cluster of %s (%d schedulable %s; its capacity is the sum of their allocatable)", h.Name, h.Nodes, plural(h.Nodes, "node", "nodes"))
	}
	summary := "Server would not fit on its host"
	if sev == SeverityError {
		summary = "Server exceeds its host's capacity and overcommit_percent"
	}
	// Only the figures that the host knows and the servers ask for.
	asked := Amount{h.Capacity.MilliCPU * min(h.RequestedAtMax.MilliCPU, 1), h.Capacity.MemoryBytes * min(h.RequestedAtMax.MemoryBytes, 1)}
	var b strings.Builder
	fmt.Fprintf(&b, "At their max replicas, the servers on %s ask for %s; it has %s.",
		where, describe(h.RequestedAtMax, asked), describe(h.Capacity, asked))
	if h.Limit != nil {
		allows := "allows this"
		if h.RequestedAtMax.Exceeds(*h.Limit) {
			allows = "allows " + describe(*h.Limit, asked)
		}
		fmt.Fprintf(&b, " overcommit_percent = %d %s.", r.OvercommitPercent, allows)
	}
	upTo := ""
	if s.scaled {
		upTo = "up to "
	}
	replicas := fmt.Sprintf("%d %s", s.MaxReplicas, plural(s.MaxReplicas, "replica", "replicas"))
	if s.scaled {
		replicas += " (scaling.max)"
	}
	fmt.Fprintf(&b, " %q asks for %s%s of %s each; only %d of them fit beside the servers placed before it (servers are placed by name: every server's replicas first, then each one's growth to its max).",
		s.Name, upTo, replicas, describe(*s.PerReplica, *s.PerReplica), *s.Fits)
	if sev == SeverityWarning && r.OvercommitPercent == 0 {
		b.WriteString(" Set tend { overcommit_percent } to make this an error beyond a bound.")
	}
	rng := s.Range
	return &Finding{Severity: sev, Host: h.Name, Server: s.Name, Summary: summary, Detail: b.String(), Range: &rng}
}

// describe writes the figures of a that known has (non-zero): "2 CPUs and
// 4 GiB of memory".
func describe(a, known Amount) string {
	var parts []string
	if known.MilliCPU > 0 {
		parts = append(parts, FormatCPU(a.MilliCPU)+" "+plural64(a.MilliCPU, "CPU", "CPUs"))
	}
	if known.MemoryBytes > 0 {
		parts = append(parts, FormatBytes(a.MemoryBytes)+" of memory")
	}
	if len(parts) == 0 {
		return "nothing known"
	}
	return strings.Join(parts, " and ")
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func plural64(milli int64, one, many string) string {
	if milli == 1000 || (milli > 0 && milli < 1000) {
		return one
	}
	return many
}
