package reconcile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"

	"github.com/tendhq/tend/providers"
	"github.com/tendhq/tend/reconcile/contract"
	"github.com/tendhq/tend/reconcile/state"
	"github.com/tendhq/tend/reconcile/verify"
	"github.com/tendhq/tend/spec"
)

// mcpCheck returns the server's first mcp check, or nil.
func mcpCheck(s *spec.Server) *spec.MCPCheck {
	for _, c := range s.Checks {
		// A contract is read over the network; a stdio check's command is
		// not the replica.
		if c.MCP != nil && c.MCP.Transport != "stdio" {
			return c.MCP
		}
	}
	return nil
}

// contractURL is where a replica's MCP endpoint is, by the mcp check.
func contractURL(prov providers.Provider, s *spec.Server, c *spec.MCPCheck, in providers.Instance) (string, http.RoundTripper, error) {
	mc := *c
	if mc.Port == "" && len(s.Ports) > 0 {
		mc.Port = s.Ports[0].Name
	}
	return verify.MCPEndpoint(verify.Target{Replica: in.Replica, Host: in.Host, Ports: in.Ports, Route: checkRoute(prov, in)}, &mc)
}

// checkRoute is how checks reach a replica of a provider that routes them
// (providers.CheckRouter); nil for the others, which checks reach at the
// replica's Host.
func checkRoute(prov providers.Provider, in providers.Instance) func(scheme string, port int) (string, http.RoundTripper, error) {
	cr, ok := prov.(providers.CheckRouter)
	if !ok {
		return nil
	}
	return func(scheme string, port int) (string, http.RoundTripper, error) {
		url, rt, ok, err := cr.CheckRoute(in, scheme, port)
		if err != nil || !ok {
			return "", nil, err
		}
		return url, rt, nil
	}
}

// FetchContract asks one running replica of a server for its API contract,
// through the endpoint of its mcp check. A server without an mcp check has
// no contract (nil, nil).
func (e *Engine) FetchContract(ctx context.Context, prov providers.Provider, s *spec.Server) (*contract.Contract, error) {
	return e.fetchContract(ctx, prov, s, func(providers.Instance) bool { return true })
}

// fetchContract asks the first running replica of s that pick accepts for
// its API contract, as FetchContract does.
func (e *Engine) fetchContract(ctx context.Context, prov providers.Provider, s *spec.Server, pick func(providers.Instance) bool) (*contract.Contract, error) {
	c := mcpCheck(s)
	if c == nil {
		return nil, nil
	}
	resp := prov.Observe(ctx, providers.ObserveRequest{ManagedBy: e.ManagedBy, Server: s.Name})
	if resp.Err != nil {
		return nil, backendError{resp.Err}
	}
	// A running replica first; else one the provider still calls
	// starting: a replica that has just passed its checks may be one (the
	// process provider calls a replica running once it is up for 1s), and
	// it answers as well.
	var in *providers.Instance
	for _, want := range []providers.State{providers.StateRunning, providers.StateStarting} {
		for i := range resp.Instances {
			if resp.Instances[i].Server == s.Name && resp.Instances[i].State == want && pick(resp.Instances[i]) {
				in = &resp.Instances[i]
				break
			}
		}
		if in != nil {
			break
		}
	}
	if in == nil {
		return nil, errors.New("no replica is running to ask for its contract")
	}
	url, rt, err := contractURL(prov, s, c, *in)
	if err != nil {
		return nil, err
	}
	var hc *http.Client
	if rt != nil {
		hc = &http.Client{Transport: rt}
	}
	transport := c.Transport
	if transport == "" {
		transport = contract.TransportStreamable
	}
	return contract.Fetch(ctx, contract.FetchOptions{
		URL: url, Transport: transport, HTTPClient: hc, Server: s.Name, ProtocolVersion: c.ProtocolVersion,
		ClientCapabilities: clientCapabilities(s),
	})
}

// clientCapabilities are the MCP client capabilities a contract read of s
// declares: its contract_capabilities, or nil (the default, roots) when it
// does not set them.
func clientCapabilities(s *spec.Server) []string {
	if s.ContractCapabilities == nil {
		return nil
	}
	return append([]string{}, *s.ContractCapabilities...)
}

// contractStep carries a change's contract check from the replicas it
// changed first to its end.
type contractStep struct {
	done bool               // the first replicas' contract was read and compared
	got  *contract.Contract // that contract
}

// checkFirstContract runs the contract check of a rolling or canary update
// on the replicas it changed first (verified, on the new spec of d),
// before the rest are changed: a build that breaks its contract then
// fails with the other replicas still on the previous one. A contract it
// read and let through is kept in step, for checkContract at the end of
// the change to record.
func (e *Engine) checkFirstContract(ctx context.Context, prov providers.Provider, d *providers.Desired, step *contractStep, changed, rest []int) error {
	s := d.Server
	if mcpCheck(s) == nil || s.Contract == contract.ModeOff || len(changed) == 0 {
		return nil
	}
	mine := func(in providers.Instance) bool {
		return slices.Contains(changed, in.Replica) && in.SpecHash == d.SpecHash
	}
	got, err := e.readContract(ctx, prov, s, mine)
	if err != nil {
		return fmt.Errorf("%s, changed first, gave no API contract to compare, %s: %w", replicaNames(changed), e.notReached(ctx, prov, d, rest), err)
	}
	if got == nil {
		return nil // warned; the check at the end of the change tries again
	}
	if err := e.judgeContract(s, got); err != nil {
		var be backendError
		if errors.As(err, &be) {
			return err
		}
		return fmt.Errorf("%s, changed first, broke the API contract, %s: %w", replicaNames(changed), e.notReached(ctx, prov, d, rest), err)
	}
	step.done, step.got = true, got
	return nil
}

// notReached says what became of rest, the replicas a rollout stopped
// before: "so replicas 1, 2 were not changed" when the provider shows them
// all on another spec than d's, else only that tend did not go on to them
// (a provider that rolls every replica itself, as a Kubernetes Deployment
// does, may have changed them already).
func (e *Engine) notReached(ctx context.Context, prov providers.Provider, d *providers.Desired, rest []int) string {
	resp := prov.Observe(ctx, providers.ObserveRequest{ManagedBy: e.ManagedBy, Server: d.Server.Name})
	old := map[int]bool{}
	for _, in := range resp.Instances {
		if in.Server == d.Server.Name && in.SpecHash != d.SpecHash && slices.Contains(rest, in.Replica) {
			old[in.Replica] = true
		}
	}
	switch {
	case resp.Err != nil || len(old) < len(rest):
		return "before tend went on to " + replicaNames(rest)
	case len(rest) == 1:
		return "so " + replicaNames(rest) + " was not changed"
	}
	return "so " + replicaNames(rest) + " were not changed"
}

// checkContract records the contract of a verified revision and, unless
// the server says contract = "off", compares it with the contract of the
// last verified revision: a breaking change under a version bump that is
// not major fails verification under "enforce", and is a warning under
// "warn". compare is false for a rollback, which restores what was. When
// step says the replicas changed first were checked already, their
// contract (that of the same spec) is recorded without asking again.
func (e *Engine) checkContract(ctx context.Context, prov providers.Provider, s *spec.Server, revisionID int64, compare bool, step *contractStep) error {
	if mcpCheck(s) == nil || s.Contract == contract.ModeOff {
		return nil
	}
	var got *contract.Contract
	if step != nil && step.done {
		got = step.got
	} else {
		var err error
		got, err = e.readContract(ctx, prov, s, func(providers.Instance) bool { return true })
		if err != nil {
			return err
		}
		if got != nil && compare {
			if err := e.judgeContract(s, got); err != nil {
				return err
			}
		}
	}
	if got == nil {
		return nil
	}
	b, err := json.Marshal(got)
	if err != nil {
		return err
	}
	if err := e.Store.PutContract(state.Contract{RevisionID: revisionID, Server: s.Name, Version: s.Version, Contract: b}); err != nil {
		e.say(s.Name, "warning: recording the API contract failed: %v", err)
	}
	return nil
}

// readContract fetches the contract of a replica pick accepts. A contract
// that cannot be read is a warning (nil, nil) unless the server says
// contract = "enforce" and the provider answered.
func (e *Engine) readContract(ctx context.Context, prov providers.Provider, s *spec.Server, pick func(providers.Instance) bool) (*contract.Contract, error) {
	got, err := e.fetchContract(ctx, prov, s, pick)
	if err != nil {
		var be backendError
		if errors.As(err, &be) || s.Contract != contract.ModeEnforce {
			e.say(s.Name, "warning: the API contract could not be read, so it was not compared: %v", err)
			return nil, nil
		}
		return nil, fmt.Errorf("the API contract could not be read (contract = \"enforce\"): %w", err)
	}
	return got, nil
}

// judgeContract compares got with the contract of the server's last
// verified revision: an error when the change must fail, a warning said
// when it passes with one, a note when the two were read declaring
// different client capabilities (they are then not compared, and got is
// recorded for the next revision to be compared with).
func (e *Engine) judgeContract(s *spec.Server, got *contract.Contract) error {
	prev, err := e.Store.LastVerifiedContract(s.Name)
	switch {
	case errors.Is(err, state.ErrNotFound):
		return nil // the first contract recorded: nothing to compare with
	case err != nil:
		return backendError{fmt.Errorf("reading the last contract: %w", err)}
	}
	var old contract.Contract
	if err := json.Unmarshal(prev.Contract, &old); err != nil {
		e.say(s.Name, "warning: the recorded contract of revision %d does not decode (%v); not compared", prev.RevisionID, err)
		return nil
	}
	v := contract.Evaluate(s.Contract, prev.Version, s.Version, contract.Compare(&old, got))
	switch {
	case v.Fail:
		return errors.New(strings.TrimSpace(v.Report))
	case v.Warn:
		e.say(s.Name, "warning: %s", strings.TrimSpace(v.Report))
	case v.Note:
		e.say(s.Name, "note: %s", strings.TrimSpace(v.Report))
	}
	return nil
}

// Contracts returns the API contract of every server of src that has one:
// the one recorded when its last verified revision was verified, or, with
// live, the one its running replicas expose now (the recorded one when no
// replica answers; each such fallback is listed in notes).
func (e *Engine) Contracts(ctx context.Context, src *Source, live bool) (map[string]*contract.Contract, []string, error) {
	recorded, err := e.Store.LastVerifiedContracts()
	if err != nil {
		return nil, nil, err
	}
	out := map[string]*contract.Contract{}
	var notes []string
	for name, rc := range recorded {
		if _, ok := src.Config.Servers[name]; !ok {
			continue
		}
		var c contract.Contract
		if err := json.Unmarshal(rc.Contract, &c); err != nil {
			notes = append(notes, fmt.Sprintf("%s: the contract recorded with revision %d does not decode: %v", name, rc.RevisionID, err))
			continue
		}
		c.ClientCapabilities = c.Declared() // a record from before they were recorded
		out[name] = &c
	}
	if !live {
		return out, notes, nil
	}
	for _, name := range sortedServerNames(src.Config) {
		s := src.Config.Servers[name]
		if mcpCheck(s) == nil {
			continue
		}
		prov, err := e.Registry.Get(src.Config, s.Provider, e.ProvEnv)
		if err != nil {
			notes = append(notes, fmt.Sprintf("%s: %v", name, err))
			continue
		}
		c, err := e.FetchContract(ctx, prov, s)
		if err != nil {
			what := "no contract is recorded either"
			if out[name] != nil {
				what = "the recorded one is used"
			}
			notes = append(notes, fmt.Sprintf("%s: %v; %s", name, err, what))
			continue
		}
		out[name] = c
	}
	return out, notes, nil
}

func sortedServerNames(cfg *spec.Config) []string {
	names := make([]string, 0, len(cfg.Servers))
	for n := range cfg.Servers {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
