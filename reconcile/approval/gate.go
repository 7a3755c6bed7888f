package approval

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"

	"github.com/tendhq/tend/reconcile/contract"
	"github.com/tendhq/tend/spec"
)

// Change is a planned change of one server, as the gates see it.
type Change struct {
	Server string
	// Action is the plan's action: create, update, reload, replace, scale, delete.
	Action      string
	FromVersion string
	ToVersion   string
	// FromState is the fields hash of the server's recorded revision (""
	// for none); ToState the fields hash of its desired state ("" for a
	// delete).
	FromState string
	ToState   string
}

// Hash names the change an approval is bound to: the server, whether it is
// deleted, and the recorded and desired states with their versions. Another
// version, other settings, or the same change from another recorded
// revision hash differently, so an approval of one does not cover them.
func (c Change) Hash() string {
	kind := "change"
	if c.Action == "delete" {
		kind = "delete"
	}
	h := sha256.New()
	fmt.Fprintf(h, "tend-change-v1\x00%s\x00%s\x00%s\x00%s\x00%s\x00%s", c.Server, kind, c.FromState, c.ToState, c.FromVersion, c.ToVersion)
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// changesRevision reports whether the change changes what was approved
// last: a delete, or a desired state other than the recorded one. A server
// whose replicas are put back on the recorded state (crashed, drifted,
// gone after a reboot) needs no approval.
func (c Change) changesRevision() bool {
	if c.Action == "delete" {
		return true
	}
	switch c.Action {
	case "create", "update", "reload", "replace", "scale":
		return c.FromState != c.ToState
	}
	return false
}

// Required returns the kinds of change, of the rules' words, for which the
// rules ask an approval of c, in spec.ApprovalChanges order; nil when none
// does.
func Required(rules []*spec.Approval, c Change) []string {
	if len(rules) == 0 || !c.changesRevision() {
		return nil
	}
	var out []string
	for _, kind := range spec.ApprovalChanges {
		if !slices.ContainsFunc(rules, func(a *spec.Approval) bool { return slices.Contains(a.Changes, kind) }) {
			continue
		}
		if matches(kind, c) {
			out = append(out, kind)
		}
	}
	return out
}

func matches(kind string, c Change) bool {
	versionChanged := c.Action != "delete" && c.FromVersion != "" && c.ToVersion != "" && c.FromVersion != c.ToVersion
	switch kind {
	case spec.ApproveAll:
		return true
	case spec.ApproveCreate:
		return c.Action == "create" && c.FromState == ""
	case spec.ApproveVersion:
		return versionChanged
	case spec.ApproveMajor:
		if !versionChanged {
			return false
		}
		switch contract.Bump(c.FromVersion, c.ToVersion) {
		case contract.BumpMajor, contract.BumpDowngrade, contract.BumpUnknown:
			return true
		}
	case spec.ApproveDelete:
		return c.Action == "delete"
	}
	return false
}

// Describe says in words what needs the approval: "a major version bump
// (1.4.2 → 2.0.0)".
func Describe(kinds []string, c Change) string {
	if len(kinds) == 0 {
		return ""
	}
	switch kinds[len(kinds)-1] {
	case spec.ApproveDelete:
		return "deleting " + c.Server
	case spec.ApproveMajor:
		if contract.Bump(c.FromVersion, c.ToVersion) == contract.BumpDowngrade {
			return fmt.Sprintf("a downgrade (%s → %s)", c.FromVersion, c.ToVersion)
		}
		return fmt.Sprintf("a major version change (%s → %s)", c.FromVersion, c.ToVersion)
	case spec.ApproveVersion:
		return fmt.Sprintf("a version change (%s → %s)", c.FromVersion, c.ToVersion)
	case spec.ApproveCreate:
		return "a new server"
	}
	if c.FromVersion != c.ToVersion && c.FromVersion != "" && c.ToVersion != "" {
		return fmt.Sprintf("every change (this one: %s %s → %s)", c.Action, c.FromVersion, c.ToVersion)
	}
	return fmt.Sprintf("every change (this one: %s)", c.Action)
}
