package reconcile

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tendhq/tend/providers"
	"github.com/tendhq/tend/reconcile/state"
)

// gates asks an approval for every version change.
const gates = `
tend {
  approval {
    changes = ["version"]
  }
}
`

// TestApprovalBinding: a version change waits for an approval; an approval
// of that change does not authorise a newer one; it survives a restart (a
// new store handle on the same file, a new engine); the approved change is
// applied once; a rejection holds the change with its reason.
func TestApprovalBinding(t *testing.T) {
	h := newHarness(t)
	if err := os.WriteFile(filepath.Join(h.dir, "gates.hcl"), []byte(gates), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// New servers are not version changes: they go.
	if _, res := h.apply(); outcome(res, "api") != ResultVerified || outcome(res, "db") != ResultVerified {
		t.Fatalf("first apply: %+v", res.Servers)
	}

	// 1.0.0 → 1.1.0 waits, and the apply leaves it alone.
	h.vars["api_version"] = "1.1.0"
	p := h.plan()
	c := p.Change("api")
	if c.Action != ActionWaiting || c.Waits != ActionUpdate || c.ChangeHash == "" || !c.waitsFor(WaitApproval) ||
		!strings.Contains(c.Reasons[0], "waiting for approval: a version change (1.0.0 → 1.1.0)") || !strings.Contains(c.Reasons[0], "tend approve api --revision "+p.SourceRevision) {
		t.Fatalf("unapproved change: %+v", c)
	}
	_, res := h.apply()
	if o := outcome(res, "api"); (o != "" && o != ResultWaiting) || h.runningVersion("api") != "1.0.0" {
		t.Fatalf("an unapproved change was applied: %+v, running %s", res.Servers, h.runningVersion("api"))
	}

	// Approving against a revision that is not the plan's is refused.
	var de *DecisionError
	if _, _, err := h.eng.Decide(ctx, h.source(), Decision{Server: "api", Revision: "dir-0000000000", By: "alice"}); !errors.As(err, &de) || !strings.Contains(err.Error(), "review the plan") {
		t.Fatalf("approval of another revision: %v", err)
	}
	src110 := h.source()
	a, _, err := h.eng.Decide(ctx, src110, Decision{Server: "api", Revision: src110.Revision, By: "alice", Note: "CHG-7"})
	if err != nil || a.ChangeHash != c.ChangeHash || a.FromVersion != "1.0.0" || a.ToVersion != "1.1.0" {
		t.Fatalf("approve: %+v, %v", a, err)
	}

	// The desired state moves on to 1.2.0 before the apply: the approval of
	// 1.1.0 does not cover it.
	h.vars["api_version"] = "1.2.0"
	if c := h.plan().Change("api"); c.Action != ActionWaiting || c.Decision != nil || c.ChangeHash == a.ChangeHash {
		t.Fatalf("an approval of 1.1.0 covered 1.2.0: %+v", c)
	}
	if _, res := h.apply(); (outcome(res, "api") != "" && outcome(res, "api") != ResultWaiting) || h.runningVersion("api") != "1.0.0" {
		t.Fatalf("1.2.0 was applied on the approval of 1.1.0: %+v", res.Servers)
	}

	// Restart: a new store handle on the same file and a new engine. Back
	// at 1.1.0, the approval is there and the change goes.
	h.restart()
	h.vars["api_version"] = "1.1.0"
	c = h.plan().Change("api")
	if c.Action != ActionUpdate || c.Decision == nil || c.Decision.By != "alice" || !strings.Contains(strings.Join(c.Reasons, "\n"), "approved by alice") {
		t.Fatalf("after a restart, the approved change: %+v", c)
	}
	_, res = h.apply()
	r := result(res, "api")
	if r.Outcome != ResultVerified || h.runningVersion("api") != "1.1.0" {
		t.Fatalf("approved change: %+v", res.Servers)
	}
	used, err := h.eng.Store.ApprovalOf(r.RevisionID)
	if err != nil || used.ID != a.ID || used.By != "alice" || used.Note != "CHG-7" {
		t.Fatalf("the revision's approval: %+v, %v", used, err)
	}

	// Applied once: back to 1.0.0 (approved), then 1.1.0 again, the same
	// change from the same state as the first approval: it waits again.
	h.vars["api_version"] = "1.0.0"
	if _, _, err := h.eng.Decide(ctx, h.source(), Decision{Server: "api", By: "bob"}); err != nil {
		t.Fatal(err)
	}
	if _, res := h.apply(); outcome(res, "api") != ResultVerified || h.runningVersion("api") != "1.0.0" {
		t.Fatalf("approved downgrade: %+v", res.Servers)
	}
	h.vars["api_version"] = "1.1.0"
	c = h.plan().Change("api")
	if c.ChangeHash != a.ChangeHash {
		t.Fatalf("the same change hashes differently: %s, %s", c.ChangeHash, a.ChangeHash)
	}
	if c.Action != ActionWaiting || c.Decision != nil {
		t.Fatalf("a used approval was applied again: %+v", c)
	}

	// A rejection holds it with the reason; a rejection needs a reason.
	if _, _, err := h.eng.Decide(ctx, h.source(), Decision{Server: "api", By: "carol", Reject: true}); err == nil {
		t.Error("a rejection without a reason was recorded")
	}
	if _, _, err := h.eng.Decide(ctx, h.source(), Decision{Server: "api", By: "carol", Reject: true, Note: "wait for the client release"}); err != nil {
		t.Fatal(err)
	}
	c = h.plan().Change("api")
	if c.Action != ActionHeld || !strings.Contains(c.Reasons[0], "rejected by carol") || !strings.Contains(c.Reasons[0], "wait for the client release") {
		t.Fatalf("rejected change: %+v", c)
	}
	if _, res := h.apply(); (outcome(res, "api") != "" && outcome(res, "api") != ResultHeld) || h.runningVersion("api") != "1.0.0" {
		t.Fatalf("a rejected change was applied: %+v", res.Servers)
	}
	// A change no rule covers cannot be approved.
	if _, _, err := h.eng.Decide(ctx, h.source(), Decision{Server: "db", By: "alice"}); !errors.As(err, &de) {
		t.Fatalf("approving db, which has no change: %v", err)
	}
	list, _ := h.eng.Store.Approvals("api", 0)
	if len(list) != 3 || list[0].Decision != state.Rejected {
		t.Fatalf("decisions recorded: %+v", list)
	}
}

func result(res *ApplyResult, server string) ServerResult {
	for _, s := range res.Servers {
		if s.Server == server {
			return s
		}
	}
	return ServerResult{}
}

// runningVersion is the version server's replicas run ("" for none, "mixed").
func (h *harness) runningVersion(server string) string {
	h.t.Helper()
	v := ""
	for _, in := range h.mem.Observe(context.Background(), providers.ObserveRequest{ManagedBy: "test"}).Instances {
		if in.Server != server {
			continue
		}
		if v != "" && v != in.Version {
			return "mixed"
		}
		v = in.Version
	}
	return v
}

// restart closes the engine's store and opens the same file again, into a
// new engine: what tend run does when it starts.
func (h *harness) restart() {
	h.t.Helper()
	path := h.eng.Store.Path()
	if err := h.eng.Store.Close(); err != nil {
		h.t.Fatal(err)
	}
	st, err := state.Open(path)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { st.Close() })
	h.eng = &Engine{Store: st, Registry: h.eng.Registry, ManagedBy: h.eng.ManagedBy, Host: h.eng.Host, LoadOptions: h.opts()}
}
