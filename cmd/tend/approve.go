package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/user"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/tendhq/tend/reconcile"
	"github.com/tendhq/tend/reconcile/api"
	"github.com/tendhq/tend/reconcile/notify"
	"github.com/tendhq/tend/reconcile/state"
)

func newApproveCmd() *cobra.Command { return newDecisionCmd(false) }
func newRejectCmd() *cobra.Command  { return newDecisionCmd(true) }

// newDecisionCmd is tend approve (reject false) and tend reject.
func newDecisionCmd(reject bool) *cobra.Command {
	ef := engineFlags{writes: true}
	var revision, by, note, remote string
	use, short, long := "approve SERVER [DIR]", "Approve the planned change of a server that waits for an approval",
		`approve records that BY approved the change the plan of DIR (or a git URL)
makes of SERVER, one that an approval block says needs an approval. The
approval is bound to that change: another version, other settings, or a
change from another recorded revision need an approval of their own. tend
run applies it on its next pass (--remote asks it for a pass at once), and
tend apply applies it; it is applied once.

--revision is the revision of the plan you reviewed: the approval is refused
when the desired state moved on since. With --remote, the running tend at
that address records it (its token in $TEND_API_TOKEN), for the desired
state it runs.

Every approval is recorded in the state store (tend history --approvals) and
sent to the notify blocks as an "approval" event.`
	if reject {
		use, short, long = "reject SERVER [DIR]", "Hold the planned change of a server that waits for an approval",
			`reject records that BY rejected the change the plan of DIR makes of SERVER,
with --reason: the plan holds it with that reason until the desired state
changes (a different change), or someone approves it after all. Like tend
approve, it is recorded, notified, and bound to the change.`
	}
	cmd := &cobra.Command{
		Use: use, Short: short, Long: long,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if by == "" {
				by = whoAmI()
			}
			d := reconcile.Decision{Server: args[0], Revision: revision, By: by, Note: note, Reject: reject}
			if remote != "" {
				return remoteDecide(cmd, remote, d)
			}
			src, err := ef.loadSource(cmd, dirArg(args[1:]), false)
			if err != nil {
				return err
			}
			e, closeFn, err := ef.newEngine(nil, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			defer closeFn()
			a, _, err := e.Decide(cmd.Context(), src, d)
			if err != nil {
				return err
			}
			n := notify.New(src.Config.Notifies, notify.Options{Log: e.Log})
			host, _ := os.Hostname()
			n.Send(notify.Event{Kind: "approval", Server: a.Server, Version: a.ToVersion, Revision: a.SourceRevision,
				Message: reconcile.DecisionMessage(a), Host: host, Time: time.Now().UTC()})
			ctx, cancel := context.WithTimeout(context.WithoutCancel(cmd.Context()), 15*time.Second)
			defer cancel()
			_ = n.Close(ctx)
			printDecision(cmd.OutOrStdout(), a)
			return nil
		},
	}
	ef.register(cmd)
	cmd.Flags().StringVar(&revision, "revision", "", "the revision of the plan you reviewed; refused when the desired state is now another one")
	cmd.Flags().StringVar(&by, "by", "", "who decides (default: $TEND_USER, else your user name and host)")
	if reject {
		cmd.Flags().StringVar(&note, "reason", "", "why the change is held (required)")
	} else {
		cmd.Flags().StringVar(&note, "note", "", "a note recorded with the approval, such as a change ticket")
	}
	cmd.Flags().StringVar(&remote, "remote", "", "record it in the running tend at this address (tend run --listen); token in $TEND_API_TOKEN")
	return cmd
}

// whoAmI names the person running the command: $TEND_USER, else
// user@host.
func whoAmI() string {
	if u := getenv("TEND_USER"); u != "" {
		return u
	}
	name := "unknown"
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	if h, err := os.Hostname(); err == nil {
		name += "@" + h
	}
	return name
}

func printDecision(w io.Writer, a *state.Approval) {
	fmt.Fprintf(w, "Recorded (#%d): %s.\n", a.ID, reconcile.DecisionMessage(a))
	if a.Decision == state.Approved {
		fmt.Fprintf(w, "tend run applies it on its next pass; tend apply applies it now. It covers this change only (%s).\n", a.ChangeHash)
	} else {
		fmt.Fprintf(w, "The change is held until the desired state changes, or someone runs `tend approve %s`.\n", a.Server)
	}
}

// remoteDecide records a decision in a running tend.
func remoteDecide(cmd *cobra.Command, remote string, d reconcile.Decision) error {
	path := "/api/v1/approve"
	body := api.DecisionRequest{Server: d.Server, Revision: d.Revision, By: d.By, Note: d.Note}
	if d.Reject {
		path, body.Note, body.Reason = "/api/v1/reject", "", d.Note
	}
	b, _ := json.Marshal(body)
	out, err := remoteCallBody(cmd.Context(), http.MethodPost, remote, path, b)
	if err != nil {
		return err
	}
	var a state.Approval
	if err := json.Unmarshal(out, &a); err != nil {
		return fmt.Errorf("tend at %s answered something that is not a decision: %v", remote, err)
	}
	printDecision(cmd.OutOrStdout(), &a)
	return nil
}

// printApprovals lists the recorded decisions, newest first.
func printApprovals(w io.Writer, list []state.Approval, output string) error {
	if output == "json" {
		if list == nil {
			list = []state.Approval{}
		}
		return writeJSON(w, list)
	}
	if len(list) == 0 {
		fmt.Fprintln(w, "No approval or rejection is recorded yet.")
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSERVER\tDECISION\tBY\tCHANGE\tSOURCE\tDECIDED\tAPPLIED\tNOTE")
	for _, a := range list {
		applied := "-"
		switch {
		case a.RevisionID != 0:
			applied = fmt.Sprintf("revision %d", a.RevisionID)
		case a.Decision == state.Approved:
			applied = "not yet"
		}
		change := a.Action
		if a.FromVersion != a.ToVersion && a.FromVersion != "" && a.ToVersion != "" {
			change += " " + a.FromVersion + " → " + a.ToVersion
		} else if a.ToVersion != "" {
			change += " " + a.ToVersion
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", a.ID, a.Server, a.Decision, a.By, change, a.SourceRevision,
			a.At.Local().Format("2006-01-02 15:04:05"), applied, oneLine(a.Note, 80))
	}
	return tw.Flush()
}

// backend's part of the API for approvals.

func (b *backend) Decide(ctx context.Context, req api.DecisionRequest) (any, error) {
	a, err := b.loop.Decide(ctx, reconcile.Decision{Server: req.Server, Revision: req.Revision, By: req.By, Note: req.Note, Reject: req.Reject})
	var de *reconcile.DecisionError
	if errors.As(err, &de) {
		return nil, &api.RefusedError{Msg: de.Msg}
	}
	return a, err
}

func (b *backend) Approvals(_ context.Context, server string, limit int) (any, error) {
	list, err := b.eng.Store.Approvals(server, limit)
	if list == nil {
		list = []state.Approval{}
	}
	return list, err
}
