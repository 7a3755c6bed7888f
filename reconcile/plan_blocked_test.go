package reconcile

import (
	"fmt"
	"testing"
	"time"
)

// A held server blocks every change that depends on it, directly or down a
// chain, whatever the order of the changes; the reason names the first
// dependency (in the order they are declared) that is stuck. The chain is
// long and listed dependents-first, which a walk over every change until
// nothing moves would take a pass per link to settle.
func TestMarkBlockedChain(t *testing.T) {
	const n = 3000
	p := &Plan{}
	for i := n - 1; i >= 0; i-- {
		c := &ServerChange{Server: fmt.Sprintf("s%04d", i), Action: ActionUpdate}
		if i > 0 {
			c.DependsOn = []string{fmt.Sprintf("s%04d", i-1)}
		}
		p.Changes = append(p.Changes, c)
	}
	p.Changes[n-1].Action = ActionHeld // s0000
	// Another server depends on one that changes and on one far down the chain.
	free := &ServerChange{Server: "free", Action: ActionUpdate}
	both := &ServerChange{Server: "both", Action: ActionUpdate, DependsOn: []string{"free", "s2000"}}
	p.Changes = append(p.Changes, free, both)

	t0 := time.Now()
	markBlocked(p)
	took := time.Since(t0)
	for _, c := range p.Changes {
		switch c.Server {
		case "s0000":
			if c.Action != ActionHeld {
				t.Fatalf("s0000 is %s", c.Action)
			}
		case "free":
			if c.Action != ActionUpdate {
				t.Fatalf("free is %s: %v", c.Action, c.Reasons)
			}
		default:
			if c.Action != ActionBlocked || len(c.Reasons) != 1 {
				t.Fatalf("%s is %s %q, not blocked", c.Server, c.Action, c.Reasons)
			}
		}
	}
	if got, want := both.Reasons, []string{"blocked: it depends on s2000, which is " + string(ActionBlocked)}; len(got) != 1 || got[0] != want[0] {
		t.Fatalf("both: %q, want %q", got, want)
	}
	if got, want := p.Changes[n-2].Reasons[0], "blocked: it depends on s0000, which is "+string(ActionHeld); got != want {
		t.Fatalf("s0001: %q, want %q", got, want)
	}
	if got, want := p.Changes[0].Reasons[0], fmt.Sprintf("blocked: it depends on s%04d, which is %s", n-2, ActionBlocked); got != want {
		t.Fatalf("the end of the chain: %q, want %q", got, want)
	}
	t.Logf("%d changes in %s", len(p.Changes), took)
}
