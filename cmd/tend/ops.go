package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/tendhq/tend/reconcile"
	"github.com/tendhq/tend/reconcile/state"
	"github.com/tendhq/tend/spec"
)

func newRollbackCmd() *cobra.Command {
	ef := engineFlags{writes: true}
	var to int64
	var dir string
	var restoreData, keepData bool
	cmd := &cobra.Command{
		Use:   "rollback SERVER",
		Short: "Restore a server to an earlier verified revision",
		Long: `rollback restores SERVER to its newest verified revision that differs from the
current one, or to --to REVISION (see tend history SERVER). The replicas are
rolled to that revision and verified, and a new revision is recorded.

The desired state it rolled back from is then held, so that the next apply
(or the daemon) does not undo the rollback. Change the desired state, or run
"tend retry SERVER", to release it.

A rollback across a revision whose migrate hook ran is refused unless told
what to do with the data: --restore-data puts back the backup taken before
that migration (rollout { backup_before }) while the replicas are down, then
starts the old version on it; --keep-data keeps the migrated data.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, closeFn, err := ef.newEngine(cmd.OutOrStdout(), cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			defer closeFn()
			if err := ef.knownServer(e, args[0]); err != nil {
				return err
			}
			release, err := e.Lock("rollback")
			if err != nil {
				return err
			}
			defer release()
			data := ""
			switch {
			case restoreData && keepData:
				return errors.New("give --restore-data or --keep-data, not both")
			case restoreData:
				data = reconcile.DataRestore
			case keepData:
				data = reconcile.DataKeep
			}
			target, id, err := e.Rollback(cmd.Context(), dir, args[0], to, data)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Rolled %s back to revision %d (%s), verified as revision %d.\nThe state it rolled back from is held; run `tend retry %s` to release it.\n",
				args[0], target.ID, target.Version, id, args[0])
			return nil
		},
	}
	ef.register(cmd)
	cmd.Flags().Int64Var(&to, "to", 0, "the revision to restore (default: the newest verified one that differs)")
	cmd.Flags().BoolVar(&restoreData, "restore-data", false, "when the rollback crosses a revision whose migrate hook ran: restore the backup taken before that migration")
	cmd.Flags().BoolVar(&keepData, "keep-data", false, "when the rollback crosses a revision whose migrate hook ran: keep the migrated data (the old version reads it)")
	cmd.Flags().StringVar(&dir, "dir", ".", "the repository directory, for file names in messages")
	return cmd
}

func newRetryCmd() *cobra.Command {
	ef := engineFlags{writes: true}
	cmd := &cobra.Command{
		Use:   "retry SERVER",
		Short: "Release a held revision, so the next apply tries it again",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, closeFn, err := ef.newEngine(nil, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			defer closeFn()
			if err := ef.knownServer(e, args[0]); err != nil {
				return err
			}
			n, err := e.Retry(args[0])
			if err != nil {
				return err
			}
			if n == 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "%s has no held revision.\n", args[0])
				return nil
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Released %d held %s of %s; the next apply tries the desired state again.\n", n, plural(n, "revision", "revisions"), args[0])
			return nil
		},
	}
	ef.register(cmd)
	return cmd
}

// knownServer refuses a server name that has no recorded revision in the
// state directory e reads, so that a name typed wrong is not answered "no
// revision is recorded yet" with exit code 0. The error names the state
// directory and suggests a recorded name that is close.
func (f *engineFlags) knownServer(e *reconcile.Engine, server string) error {
	names, err := e.RecordedServerNames()
	if err != nil {
		return err
	}
	if slices.Contains(names, server) {
		return nil
	}
	dir := f.storeWhere()
	if len(names) == 0 {
		return fmt.Errorf("no server %q is recorded: %s records no revision at all (is it the one tend apply used? see --state-dir, $TEND_STATE_DIR, --store and $TEND_STORE)", server, dir)
	}
	listed := names
	if len(listed) > 10 {
		listed = append(listed[:10:10], fmt.Sprintf("and %d more", len(names)-10))
	}
	return fmt.Errorf("no server %q is recorded in %s.%s The servers recorded there: %s", server, dir, spec.DidYouMean(server, names), strings.Join(listed, ", "))
}

func newUnlockCmd() *cobra.Command {
	var ef engineFlags
	cmd := &cobra.Command{
		Use:   "unlock",
		Short: "Release the apply lock of a tend that is gone",
		Long: `unlock removes the apply lock. Use it only when the tend that holds it is gone
and its lock has not expired yet: a lock whose holder died on this host is
taken over by the next apply by itself.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			e, closeFn, err := ef.newEngine(nil, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			defer closeFn()
			prev, err := e.Store.ForceUnlock()
			if err != nil {
				return err
			}
			if prev == nil {
				fmt.Fprintln(cmd.OutOrStdout(), "The state was not locked.")
				return nil
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Released the lock of %s (pid %d on %s, %s since %s).\n", prev.Owner, prev.PID, prev.Host, prev.Operation, prev.AcquiredAt.Format(time.RFC3339))
			return nil
		},
	}
	ef.register(cmd)
	return cmd
}

func newHistoryCmd() *cobra.Command {
	var ef engineFlags
	var output string
	var limit int
	var scaling, approvals bool
	cmd := &cobra.Command{
		Use:   "history [SERVER]",
		Short: "List applied revisions, newest first",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, closeFn, err := ef.newEngine(nil, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			defer closeFn()
			server := ""
			if len(args) == 1 {
				server = args[0]
			}
			if scaling {
				return printScaleHistory(cmd.OutOrStdout(), e, server, limit, output)
			}
			if approvals {
				list, err := e.Store.Approvals(server, limit)
				if err != nil {
					return err
				}
				return printApprovals(cmd.OutOrStdout(), list, output)
			}
			if server != "" {
				if err := ef.knownServer(e, server); err != nil {
					return err
				}
			}
			hist, err := e.Store.History(server, limit)
			if err != nil {
				return err
			}
			approvedBy := map[int64]string{}
			if list, err := e.Store.Approvals(server, 0); err == nil {
				for _, a := range list {
					if a.RevisionID != 0 {
						approvedBy[a.RevisionID] = a.By
					}
				}
			}
			if output == "json" {
				type row struct {
					ID             int64     `json:"revision"`
					Server         string    `json:"server"`
					SourceRevision string    `json:"source_revision"`
					Version        string    `json:"version"`
					Outcome        string    `json:"outcome"`
					Trigger        string    `json:"trigger"`
					Message        string    `json:"message"`
					StartedAt      time.Time `json:"started_at"`
					FinishedAt     time.Time `json:"finished_at"`
					ApprovedBy     string    `json:"approved_by,omitempty"`
				}
				rows := make([]row, 0, len(hist))
				for _, r := range hist {
					rows = append(rows, row{r.ID, r.Server, r.SourceRevision, r.Version, string(r.Outcome), r.Trigger, r.Message, r.StartedAt, r.FinishedAt, approvedBy[r.ID]})
				}
				return writeJSON(cmd.OutOrStdout(), rows)
			}
			if len(hist) == 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "No revision is recorded yet in %s.\n", ef.storeWhere())
				return nil
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "REVISION\tSERVER\tVERSION\tOUTCOME\tTRIGGER\tSOURCE\tSTARTED\tDURATION\tAPPROVED BY\tMESSAGE")
			for _, r := range hist {
				d := "-"
				if !r.FinishedAt.IsZero() {
					d = r.FinishedAt.Sub(r.StartedAt).Round(100 * time.Millisecond).String()
				}
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Server, r.Version, r.Outcome, r.Trigger,
					r.SourceRevision, r.StartedAt.Local().Format("2006-01-02 15:04:05"), d, dash(approvedBy[r.ID]), oneLine(r.Message, 100))
			}
			return tw.Flush()
		},
	}
	ef.register(cmd)
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	cmd.Flags().IntVarP(&limit, "limit", "n", 50, "how many revisions to show (0: all)")
	cmd.Flags().BoolVar(&approvals, "approvals", false, "list the approvals and rejections of planned changes (tend approve, tend reject, the API) instead of revisions")
	cmd.Flags().BoolVar(&scaling, "scaling", false, "list the autoscaler's decisions (with their samples in -o json) instead of revisions")
	return cmd
}

// printScaleHistory lists the autoscaler's recorded decisions.
func printScaleHistory(w io.Writer, e *reconcile.Engine, server string, limit int, output string) error {
	if limit == 0 {
		limit = 1 << 30
	}
	list, err := e.Store.ScaleDecisions(server, limit)
	if err != nil {
		return err
	}
	if output == "json" {
		type row struct {
			state.ScaleDecision
			Inputs json.RawMessage `json:"inputs,omitempty"`
		}
		rows := make([]row, 0, len(list))
		for _, d := range list {
			r := row{ScaleDecision: d}
			if json.Valid(d.Inputs) {
				r.Inputs = d.Inputs
			}
			rows = append(rows, r)
		}
		return writeJSON(w, rows)
	}
	if len(list) == 0 {
		fmt.Fprintln(w, "No scaling decision is recorded yet.")
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DECISION\tSERVER\tREPLICAS\tOUTCOME\tREVISION\tDECIDED\tREASON\tMESSAGE")
	for _, d := range list {
		rev := "-"
		if d.RevisionID != 0 {
			rev = fmt.Sprint(d.RevisionID)
		}
		fmt.Fprintf(tw, "%d\t%s\t%d → %d\t%s\t%s\t%s\t%s\t%s\n", d.ID, d.Server, d.FromReplicas, d.ToReplicas, d.Outcome, rev,
			d.DecidedAt.Local().Format("2006-01-02 15:04:05"), oneLine(d.Reason, 90), oneLine(d.Message, 90))
	}
	return tw.Flush()
}

func oneLine(s string, n int) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > n {
		return s[:n-3] + "..."
	}
	return s
}

func newStatusCmd() *cobra.Command {
	var ef engineFlags
	var output, remote string
	cmd := &cobra.Command{
		Use:   "status [DIR]",
		Short: "Show every server: desired and live version, health, last apply, drift, holds",
		Long: `status answers "what is running, and why is this server not updating?": for
every server of the desired state in DIR (and every orphan), the desired and
live versions, replicas running, health, drift, the last revision applied,
holds, and what the next apply would do.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if remote != "" {
				return remoteStatus(cmd, remote, output)
			}
			src, err := ef.loadSource(cmd, dirArg(args), false)
			if err != nil {
				return err
			}
			e, closeFn, err := ef.newEngine(nil, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			defer closeFn()
			sts, err := e.Status(cmd.Context(), src)
			if err != nil {
				return err
			}
			if output == "json" {
				return writeJSON(cmd.OutOrStdout(), sts)
			}
			out := cmd.OutOrStdout()
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SERVER\tDESIRED\tLIVE\tREPLICAS\tHEALTH\tLAST APPLY")
			for _, s := range sts {
				last := "-"
				if r := s.LastRevision; r != nil {
					last = fmt.Sprintf("#%d %s %s (%s)", r.ID, r.Version, r.Outcome, ago(r.StartedAt))
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d/%d\t%s\t%s\n", s.Server, dash(s.DesiredVersion), dash(strings.Join(s.LiveVersions, ",")),
					s.Running, s.DesiredReplicas, s.Health, last)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if !slices.ContainsFunc(sts, func(s reconcile.ServerStatus) bool { return s.LastRevision != nil }) {
				fmt.Fprintf(out, "\nNo revision is recorded yet in %s.\n", ef.storeWhere())
			}
			for _, s := range sts {
				var notes []string
				for _, h := range s.Held {
					notes = append(notes, fmt.Sprintf("held: revision %d (%s) %s at %s; change the desired state or run `tend retry %s`", h.RevisionID, h.Version, h.Reason, h.At.Local().Format(time.RFC3339), s.Server))
				}
				for _, d := range s.Drift {
					notes = append(notes, "drift: "+d)
				}
				if s.Pending != "" {
					notes = append(notes, "next apply: "+s.Pending)
				}
				notes = append(notes, backupLine(s.Backup)...)
				notes = append(notes, scalingLines(s.Scaling)...)
				if len(notes) > 0 {
					fmt.Fprintf(out, "\n%s:\n", s.Server)
					for _, n := range notes {
						fmt.Fprintf(out, "  %s\n", n)
					}
				}
			}
			return nil
		},
	}
	ef.register(cmd)
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	cmd.Flags().StringVar(&remote, "remote", "", "read the status of a running tend at this address (tend run --listen); token in $TEND_API_TOKEN")
	return cmd
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func ago(t time.Time) string {
	d := time.Since(t)
	switch {
	case d < time.Minute:
		return strconv.Itoa(int(d.Seconds())) + "s ago"
	case d < time.Hour:
		return strconv.Itoa(int(d.Minutes())) + "m ago"
	case d < 48*time.Hour:
		return strconv.Itoa(int(d.Hours())) + "h ago"
	}
	return t.Local().Format("2006-01-02")
}

// scalingLines say who scales a server and where its count stands.
func scalingLines(st *reconcile.ScalingStatus) []string {
	if st == nil {
		return nil
	}
	if st.By != "tend" {
		return []string{fmt.Sprintf("scaling: min %d, max %d, by the provider's own autoscaler", st.Min, st.Max)}
	}
	line := fmt.Sprintf("scaling: min %d, max %d, by tend; %d replicas declared", st.Min, st.Max, st.Declared)
	if st.Autoscaled > 0 {
		line = fmt.Sprintf("scaling: min %d, max %d, by tend; autoscaled to %d %s (declared %d)", st.Min, st.Max, st.Autoscaled, plural(st.Autoscaled, "replica", "replicas"), st.Declared)
	}
	out := []string{line}
	if d := st.LastDecision; d != nil {
		l := fmt.Sprintf("last scale: %d → %d %s (%s): %s", d.FromReplicas, d.ToReplicas, d.Outcome, ago(d.DecidedAt), d.Reason)
		if d.Message != "" && d.Outcome != state.ScaleApplied {
			l += "; " + d.Message
		}
		out = append(out, l)
	}
	return out
}
