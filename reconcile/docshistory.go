package reconcile

import (
	"encoding/json"
	"errors"
	"sort"

	"github.com/tendhq/tend/reconcile/contract"
	"github.com/tendhq/tend/reconcile/fleetdocs"
	"github.com/tendhq/tend/reconcile/state"
	"github.com/tendhq/tend/spec"
)

// docsHistoryLimit bounds the revisions of one server read for the docs.
const docsHistoryLimit = 1000

// DocsHistory reads from the store what CHANGELOG.md and TROUBLESHOOTING.md
// say of each server of cfg: its verified revisions, with their recorded
// desired state and contract, and its failed and rolled-back ones.
func (e *Engine) DocsHistory(cfg *spec.Config) (*fleetdocs.History, error) {
	h := &fleetdocs.History{Servers: map[string]*fleetdocs.ServerHistory{}}
	names := make([]string, 0, len(cfg.Servers))
	for n := range cfg.Servers {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		revs, err := e.Store.History(name, docsHistoryLimit)
		if err != nil {
			return nil, err
		}
		contracts, err := e.Store.ContractsOf(name)
		if err != nil {
			return nil, err
		}
		sh := &fleetdocs.ServerHistory{}
		for _, r := range revs {
			// Messages were redacted when recorded; a secret that is
			// sensitive now is hidden again, for a record from before.
			d := fleetdocs.Revision{
				ID: r.ID, Version: r.Version, Commit: r.SourceRevision, Trigger: r.Trigger,
				Outcome: string(r.Outcome), Message: redact(cfg.Servers[name], r.Message), At: r.FinishedAt,
			}
			switch r.Outcome {
			case state.OutcomeVerified:
				if len(r.Spec) > 0 {
					var fields []spec.Field
					if json.Unmarshal(r.Spec, &fields) == nil {
						d.Fields = fields
					}
				}
				if rc, ok := contracts[r.ID]; ok {
					var c contract.Contract
					if json.Unmarshal(rc.Contract, &c) == nil {
						c.ClientCapabilities = c.Declared()
						d.Contract = &c
					}
				}
				by, err := e.approvedBy(r.ID)
				if err != nil {
					return nil, err
				}
				d.ApprovedBy = by
				sh.Verified = append(sh.Verified, d)
			case state.OutcomeFailed, state.OutcomeRolledBack:
				sh.Failures = append(sh.Failures, d)
			}
		}
		h.Servers[name] = sh
	}
	return h, nil
}

// approvedBy says who approved the change a revision carried out: empty
// when it needed no approval (or was applied before approvals existed).
func (e *Engine) approvedBy(revisionID int64) (string, error) {
	a, err := e.Store.ApprovalOf(revisionID)
	switch {
	case errors.Is(err, state.ErrNotFound):
		return "", nil
	case err != nil:
		return "", err
	case a.Decision != state.Approved:
		return "", nil
	}
	return a.By, nil
}
