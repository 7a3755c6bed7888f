// Package capacity is tend's capacity planning: what each host (or
// cluster) can hold, what the servers on it ask for now and at their max
// replicas, what they use, the headroom, and which servers would not fit.
//
// Compute is pure: it reads the desired state, the providers' capacities,
// the observed replica counts and any usage figures from its Input, and
// returns a Report, with findings that carry the position of the server
// block they are about (so tend plan prints them as diagnostics). It is
// table-tested without backends. The little I/O that feeds it (one
// Capacity call per provider, one Stats sample per replica) is in
// gather.go, apart from it.
//
// The rules:
//
//   - A server counts on the host of its provider: process and systemd
//     providers are the host tend runs on, a docker provider the Engine's
//     host. Providers that report the same host name (two process
//     providers; a local Docker Engine) share it, with the smaller of their
//     figures.
//   - A Kubernetes provider is a cluster: its capacity is the sum of the
//     allocatable of its schedulable nodes (pods are spread over them; the
//     sum says nothing of how they pack), and a replica that no single node
//     can hold is a finding of its own.
//   - A server asks for resources × replicas now, and resources ×
//     max(replicas, scaling.max) at its max. A server without a resources
//     block cannot be counted: it is listed as unsized, never an error.
//   - Which servers would not fit: the servers are placed on their host by
//     name, first their replicas, then their growth to max; a server whose
//     replicas do not all get a place would not fit.
//   - Findings: a warning for every server that would not fit; an error
//     instead when tend { overcommit_percent } is set and the server would
//     not fit even on capacity × overcommit_percent / 100 (and for a replica
//     larger than every node of a cluster).
//
// This package must not start, stop or change anything, and Compute must
// not do I/O.
package capacity
