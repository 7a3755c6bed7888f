package spec

import (
	"strings"
	"testing"
)

func TestFieldsHashAndDiff(t *testing.T) {
	t.Parallel()
	base := func() *Server {
		return &Server{
			Name: "api", Provider: "process.default", Version: "1.0.0", Replicas: 2,
			Command: []Value{Plain("./api")},
			Env:     map[string]Value{"PLAIN": Plain("a"), "TOKEN": Sensitive("s3cret")},
			Ports:   []Port{{Name: "http", Number: 8000, Protocol: "tcp"}},
			Checks:  []*Check{{Name: "health", Kind: CheckTCP, Interval: DefaultCheckInterval, TCP: &TCPCheck{Port: "http"}}},
			Rollout: Rollout{Strategy: StrategyRolling, VerifyFor: DefaultVerifyFor},
		}
	}
	a := base().Fields()
	for _, f := range a {
		if strings.Contains(f.Value, "s3cret") || strings.Contains(f.Compare, "s3cret") {
			t.Fatalf("field %s shows the secret", f.Path)
		}
	}

	// A check or replica change is not a runtime change.
	b := base()
	b.Checks[0].Interval = 2 * DefaultCheckInterval
	b.Replicas = 3
	if RuntimeHash(a) != RuntimeHash(b.Fields()) {
		t.Errorf("a check interval and replica count changed the runtime hash")
	}
	if FieldsHash(a) == FieldsHash(b.Fields()) {
		t.Errorf("the fields hash ignored a change")
	}
	changes := DiffFields(a, b.Fields())
	if len(changes) != 2 || changes[0].Path != "checks.health.interval" || changes[1].Path != "replicas" {
		t.Errorf("changes = %+v", changes)
	}

	// A secret change is a runtime change, shown without its value.
	c := base()
	c.Env["TOKEN"] = Sensitive("other")
	if RuntimeHash(a) == RuntimeHash(c.Fields()) {
		t.Errorf("a changed secret kept the runtime hash")
	}
	ch := DiffFields(a, c.Fields())
	if len(ch) != 1 || !ch[0].Sensitive || ch[0].Old != Redacted || ch[0].New != Redacted || !ch[0].Runtime {
		t.Errorf("secret change = %+v", ch)
	}

	// Added and removed fields.
	d := base()
	delete(d.Env, "PLAIN")
	d.Env["NEW"] = Plain("x")
	ch = DiffFields(a, d.Fields())
	if len(ch) != 2 || !ch[0].Added || ch[0].Path != "env.NEW" || !ch[1].Removed || ch[1].Path != "env.PLAIN" {
		t.Errorf("add/remove = %+v", ch)
	}
}

// TestFieldsContractCapabilities: an unset contract_capabilities adds no
// field (so existing servers keep their hashes); setting it, even to an
// empty list, is a change of desired state, not a runtime one.
func TestFieldsContractCapabilities(t *testing.T) {
	t.Parallel()
	unset := (&Server{Name: "api", Version: "1.0.0", Contract: "warn"}).Fields()
	for _, f := range unset {
		if f.Path == "contract_capabilities" {
			t.Errorf("an unset contract_capabilities adds the field %+v", f)
		}
	}
	for _, tc := range []struct {
		caps []string
		want string
	}{{[]string{}, "[]"}, {[]string{"roots", "sampling"}, "[roots, sampling]"}} {
		caps := tc.caps
		set := (&Server{Name: "api", Version: "1.0.0", Contract: "warn", ContractCapabilities: &caps}).Fields()
		ch := DiffFields(unset, set)
		if len(ch) != 1 || ch[0].Path != "contract_capabilities" || ch[0].New != tc.want || !ch[0].Added || ch[0].Runtime {
			t.Errorf("contract_capabilities = %q: changes = %+v, want the field added as %s", tc.caps, ch, tc.want)
		}
		if RuntimeHash(unset) != RuntimeHash(set) {
			t.Errorf("contract_capabilities = %q changed the runtime hash", tc.caps)
		}
	}
}
