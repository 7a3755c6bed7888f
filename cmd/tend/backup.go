package main

import (
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/tendhq/tend/reconcile"
	"github.com/tendhq/tend/reconcile/state"
)

func newBackupCmd() *cobra.Command {
	var ef engineFlags
	var dir string
	var all bool
	cmd := &cobra.Command{
		Use:   "backup [SERVER...]",
		Short: "Take a backup of servers now",
		Long: `backup takes one backup of each SERVER (or, with --all, of every server with a
backup block) now: from one running replica, the data paths of its backup
block and the output of its command, as one archive with a manifest at the
block's destination. Each is recorded in the catalog (tend backups), and
retention (keep) runs after it.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			src, e, closeFn, err := ef.sourceAndEngine(cmd, dir, cmd.OutOrStdout())
			if err != nil {
				return err
			}
			defer closeFn()
			names := args
			if all {
				for _, n := range src.Config.ServerNames() {
					if src.Config.Servers[n].Backup != nil {
						names = append(names, n)
					}
				}
			}
			if len(names) == 0 {
				return errors.New("name the servers to back up, or give --all")
			}
			release, err := e.Lock("backup")
			if err != nil {
				return err
			}
			defer release()
			failed := 0
			for _, n := range names {
				if _, err := e.Backup(cmd.Context(), src.Config, reconcile.BackupRequest{Server: n, Trigger: state.TriggerManual}); err != nil {
					fmt.Fprintf(cmd.ErrOrStderr(), "%s: %v\n", n, err)
					failed++
				}
			}
			if failed > 0 {
				return exitError{1}
			}
			return nil
		},
	}
	ef.register(cmd)
	cmd.Flags().StringVar(&dir, "dir", ".", "the state repository (a directory or a git URL)")
	cmd.Flags().BoolVar(&all, "all", false, "back up every server that has a backup block")
	return cmd
}

func newBackupsCmd() *cobra.Command {
	var ef engineFlags
	var output string
	var limit int
	cmd := &cobra.Command{
		Use:   "backups [SERVER]",
		Short: "List the backup catalog, newest first",
		Long: `backups lists the catalog: every backup tend took (good, failed or found
damaged), with its trigger, the version it holds, its size and where it is.
"tend backups verify" re-reads archives and checks their sha256; "tend backups
sync" rebuilds the catalog from the destinations (a new machine).`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, closeFn, err := ef.newEngine(nil, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			defer closeFn()
			server := optionalArg(args)
			rows, err := e.Store.Backups(server, limit)
			if err != nil {
				return err
			}
			if output == "json" {
				if rows == nil {
					rows = []state.Backup{}
				}
				return writeJSON(cmd.OutOrStdout(), rows)
			}
			if len(rows) == 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "No backup is recorded%s in %s.\n", forServer(server), e.Store.Path())
				return nil
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tSERVER\tTRIGGER\tVERSION\tSIZE\tOUTCOME\tTAKEN\tDESTINATION")
			for _, b := range rows {
				outcome := b.Outcome
				if b.Error != "" {
					outcome += ": " + oneLine(b.Error, 60)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", b.ID, b.Server, b.Trigger, dash(b.Version), sizeOf(b), outcome, ago(b.StartedAt), b.Destination)
			}
			return tw.Flush()
		},
	}
	ef.register(cmd)
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	cmd.Flags().IntVar(&limit, "limit", 0, "at most this many backups (default all)")
	cmd.AddCommand(newBackupsVerifyCmd(), newBackupsSyncCmd())
	return cmd
}

// sourceAndEngine loads the state repository at dir (strictly: secrets
// must resolve) and opens the engine, for the commands that need both.
func (f *engineFlags) sourceAndEngine(cmd *cobra.Command, dir string, progress io.Writer) (*reconcile.Source, *reconcile.Engine, func(), error) {
	src, err := f.loadSource(cmd, dir, true)
	if err != nil {
		return nil, nil, nil, err
	}
	f.writes = true // every one of them records in the store
	e, closeFn, err := f.newEngine(progress, cmd.ErrOrStderr())
	if err != nil {
		return nil, nil, nil, err
	}
	return src, e, closeFn, nil
}

// optionalArg is the one optional argument of a command, or "".
func optionalArg(args []string) string {
	if len(args) == 1 {
		return args[0]
	}
	return ""
}

func forServer(s string) string {
	if s == "" {
		return ""
	}
	return " for " + s
}

func sizeOf(b state.Backup) string {
	if b.Outcome == state.BackupFailed {
		return "-"
	}
	const mib = 1 << 20
	if b.Size >= mib {
		return fmt.Sprintf("%.1fM", float64(b.Size)/mib)
	}
	return fmt.Sprintf("%.1fK", float64(b.Size)/1024)
}

func newBackupsVerifyCmd() *cobra.Command {
	var ef engineFlags
	var dir string
	cmd := &cobra.Command{
		Use:   "verify [SERVER]",
		Short: "Re-read archives and check their sha256",
		Long: `verify re-reads every good (or damaged) backup in the catalog, of SERVER or of
all servers, from its destination and checks its size and sha256 against the
catalog. A backup that no longer matches is marked damaged (restore refuses
it); one that matches again is marked ok. It exits 1 when any is damaged or
cannot be read.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			src, e, closeFn, err := ef.sourceAndEngine(cmd, dir, nil)
			if err != nil {
				return err
			}
			defer closeFn()
			server := optionalArg(args)
			results, err := e.VerifyBackups(cmd.Context(), src.Config, server)
			if err != nil {
				return err
			}
			bad := 0
			for _, r := range results {
				if r.Err != nil {
					bad++
					fmt.Fprintf(cmd.OutOrStdout(), "%s %s: %v\n", r.Backup.ID, r.Backup.Server, r.Err)
				} else {
					fmt.Fprintf(cmd.OutOrStdout(), "%s %s: ok (%s)\n", r.Backup.ID, r.Backup.Server, sizeOf(r.Backup))
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%d checked, %d damaged or unreadable.\n", len(results), bad)
			if bad > 0 {
				return exitError{1}
			}
			return nil
		},
	}
	ef.register(cmd)
	cmd.Flags().StringVar(&dir, "dir", ".", "the state repository (its backup blocks say how to reach the destinations)")
	return cmd
}

func newBackupsSyncCmd() *cobra.Command {
	var ef engineFlags
	var dir string
	cmd := &cobra.Command{
		Use:   "sync [SERVER]",
		Short: "Rebuild the catalog from the backup destinations",
		Long: `sync reads the manifests at the destination of every server's backup block (or
of SERVER's) and records in the catalog each backup it does not know yet: how a
tend on a new machine, with an empty state directory, finds the backups again.
It only reads the destinations.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			src, e, closeFn, err := ef.sourceAndEngine(cmd, dir, nil)
			if err != nil {
				return err
			}
			defer closeFn()
			server := optionalArg(args)
			added, known, errs := e.SyncBackups(cmd.Context(), src.Config, server)
			for _, err := range errs {
				fmt.Fprintf(cmd.ErrOrStderr(), "warning: %v\n", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Found %d %s at the destinations: %d new in the catalog, %d known already.\n", added+known, plural(added+known, "backup", "backups"), added, known)
			return nil
		},
	}
	ef.register(cmd)
	cmd.Flags().StringVar(&dir, "dir", ".", "the state repository")
	return cmd
}

func newRestoreCmd() *cobra.Command {
	var ef engineFlags
	var dir, id, output string
	var drill bool
	cmd := &cobra.Command{
		Use:   "restore SERVER",
		Short: "Restore a server's data from a backup, or drill a restore",
		Long: `restore puts the data of a backup (--backup ID, default the newest good one)
back into SERVER. It checks the archive's sha256 first and refuses a damaged
one before anything stops; takes a pre-restore backup; halts the replicas,
copies each data path in, starts them; runs the restore_command with the dump
on its standard input; and verifies the server with its checks. When
verification fails, it puts the pre-restore data back and says so. The
restore is recorded in tend history.

With --drill, the backup is restored into a throw-away replica SERVER-drill
beside the live ones (its own ports and data), checked and removed: the live
replicas are not touched. tend status shows when each server's backups were
last proven restorable.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			// Progress goes with the result, as apply's does; with -o json
			// it goes to stderr, and stdout holds only the JSON.
			progress := cmd.OutOrStdout()
			if output == "json" {
				progress = cmd.ErrOrStderr()
			}
			src, e, closeFn, err := ef.sourceAndEngine(cmd, dir, progress)
			if err != nil {
				return err
			}
			defer closeFn()
			release, err := e.Lock("restore")
			if err != nil {
				return err
			}
			defer release()
			res, err := e.Restore(cmd.Context(), src.Config, reconcile.RestoreRequest{Server: args[0], BackupID: id, Drill: drill})
			if output == "json" && res != nil {
				if jerr := writeJSON(cmd.OutOrStdout(), res); jerr != nil {
					return jerr
				}
			}
			if err != nil && res != nil {
				return exitError{1}
			}
			return err
		},
	}
	ef.register(cmd)
	cmd.Flags().StringVar(&dir, "dir", ".", "the state repository (a directory or a git URL)")
	cmd.Flags().StringVar(&id, "backup", "", "the backup to restore (default: the newest good one; see tend backups)")
	cmd.Flags().BoolVar(&drill, "drill", false, "restore into a throw-away replica, check it and remove it; the server is not touched")
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	return cmd
}

// backupLine is the backup part of tend status for one server.
func backupLine(b *reconcile.BackupStatus) []string {
	if b == nil {
		return nil
	}
	var out []string
	last := "backup: none taken yet"
	if b.LastGood != nil {
		last = fmt.Sprintf("backup: last good %s (%s, %s)", b.LastGood.ID, ago(b.LastGood.StartedAt), sizeOf(*b.LastGood))
	}
	if b.Last != nil && b.Last.Outcome != state.BackupOK {
		last += fmt.Sprintf("; the newest, %s, %s: %s", b.Last.ID, b.Last.Outcome, oneLine(b.Last.Error, 80))
	}
	if !b.Next.IsZero() {
		last += "; next " + b.Next.Local().Format(time.RFC3339)
	}
	out = append(out, last)
	switch {
	case b.LastDrill == nil:
		out = append(out, "restore drill: never")
	case b.LastDrill.Outcome == state.DrillPassed:
		out = append(out, fmt.Sprintf("restore drill: passed %s (backup %s)", ago(b.LastDrill.FinishedAt), b.LastDrill.BackupID))
	default:
		msg := fmt.Sprintf("restore drill: FAILED %s: %s", ago(b.LastDrill.FinishedAt), oneLine(b.LastDrill.Message, 100))
		if b.LastPassedDrill != nil {
			msg += fmt.Sprintf(" (last passed %s)", ago(b.LastPassedDrill.FinishedAt))
		}
		out = append(out, msg)
	}
	return out
}
