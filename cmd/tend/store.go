package main

import (
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/tendhq/tend/reconcile/state"
)

func newStoreCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "store",
		Short: "Look after tend's state store",
		Long: `The state store (STATE_DIR/state.db, a SQLite file) is tend's record of every
revision it applied, the holds and the snapshots rollbacks need. Beside it,
state.id holds the store's identity: tend refuses a store that vanished or was
swapped rather than start a new, empty one without a word.

--store or $TEND_STORE (postgres://USER@HOST:PORT/DATABASE) puts the store in a
PostgreSQL database instead, which several tends on several hosts can share;
tend store migrate --to copies a SQLite store there.`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newStoreCheckCmd(), newStoreMigrateCmd())
	return cmd
}

func newStoreCheckCmd() *cobra.Command {
	var ef engineFlags
	var output string
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Check the state store: integrity, identity, schema and rows",
		Long: `check runs SQLite's integrity_check (every page and every index entry) and
foreign_key_check over the state store, compares the store's identity with
the one state.id beside it holds, and prints what it found, with the store's
schema version and the rows of each table. It only reads: it works on a store
the other commands refuse, and changes nothing. It reads the whole file: about
a second for a store of 100,000 revisions (200 MB).

Exit status: 0 the store is whole and the one tend wrote (or there is none and
none was expected), 1 the check could not run, 2 the store is damaged, missing
or not the one state.id names.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "text" && output != "json" {
				return fmt.Errorf("-o %q: text or json", output)
			}
			path, err := ef.storePath()
			if err != nil {
				return err
			}
			r, err := state.Inspect(cmd.Context(), path)
			if err != nil {
				return err
			}
			if output == "json" {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				if err := enc.Encode(storeCheckJSON{Report: r, OK: r.OK(), Damaged: r.Damaged()}); err != nil {
					return err
				}
			} else if err := printStoreCheck(cmd.OutOrStdout(), r); err != nil {
				return err
			}
			if !r.OK() {
				return exitError{code: 2}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&ef.stateDir, "state-dir", "", "where tend keeps its state (default $TEND_STATE_DIR, else ~/.local/state/tend)")
	registerStoreFlag(cmd, &ef.store)
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	return cmd
}

// storeCheckJSON is tend store check -o json: the report and its verdicts.
// The field names are stable.
type storeCheckJSON struct {
	*state.Report
	OK      bool `json:"ok"`
	Damaged bool `json:"damaged"`
}

// maxFindings is how many findings of integrity_check the text shows.
const maxFindings = 20

func printStoreCheck(w io.Writer, r *state.Report) error {
	if r.Backend == "postgres" {
		return printPostgresCheck(w, r)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	marker := filepath.Base(r.MarkerPath)
	if !r.Exists {
		fmt.Fprintf(tw, "Store\t%s: %s\n", r.Path, r.Absent)
	} else {
		size := topBytes(r.Size)
		if r.WALSize > 0 {
			size += ", and " + topBytes(r.WALSize) + " of write-ahead log"
		}
		fmt.Fprintf(tw, "Store\t%s (%s)\n", r.Path, size)
	}
	switch {
	case r.IdentityProblem != "":
		fmt.Fprintf(tw, "Identity\tPROBLEM (below)\n")
	case r.Identity != nil && r.Marker != nil:
		fmt.Fprintf(tw, "Identity\t%s; %s agrees\n", r.Identity, marker)
	case r.Identity != nil:
		fmt.Fprintf(tw, "Identity\t%s; no %s yet (tend writes it when it next opens the store)\n", r.Identity, marker)
	case r.Exists && r.SchemaVersion > 0 && r.SchemaVersion < 5:
		fmt.Fprintf(tw, "Identity\tnone yet: a store from before identities (tend gives it one when it next opens it)\n")
	case r.Exists:
		fmt.Fprintf(tw, "Identity\tunknown: it cannot be read\n")
	}
	if r.Exists {
		if r.SchemaVersion > 0 {
			fmt.Fprintf(tw, "Schema\tversion %d (this tend knows up to %d)\n", r.SchemaVersion, r.KnownSchema)
		}
		ok := len(r.Integrity) == 1 && r.Integrity[0] == "ok"
		switch {
		case ok:
			fmt.Fprintf(tw, "Integrity\tok (integrity_check, %s)\n", r.Elapsed.Round(time.Millisecond))
		case len(r.Integrity) > 0:
			n := fmt.Sprintf("%d %s", len(r.Integrity), plural(len(r.Integrity), "problem", "problems"))
			if len(r.Integrity) >= 100 {
				n = "100 problems or more (it stops at 100)"
			}
			fmt.Fprintf(tw, "Integrity\tDAMAGED: integrity_check found %s\n", n)
			for i, f := range r.Integrity {
				if i == maxFindings {
					fmt.Fprintf(tw, "\t… and %d more (tend store check -o json lists them all)\n", len(r.Integrity)-maxFindings)
					break
				}
				fmt.Fprintf(tw, "\t  %s\n", f)
			}
		}
		if len(r.ForeignKeys) > 0 {
			fmt.Fprintf(tw, "Foreign keys\tDAMAGED: %d %s refer to missing rows\n", len(r.ForeignKeys), plural(len(r.ForeignKeys), "row", "rows"))
			for _, f := range r.ForeignKeys {
				fmt.Fprintf(tw, "\t  %s\n", f)
			}
		} else if r.ForeignKeys != nil {
			fmt.Fprintf(tw, "Foreign keys\tok\n")
		}
		for i, e := range r.Errors {
			label := ""
			if i == 0 && len(r.Integrity) == 0 {
				label = "Integrity"
			}
			fmt.Fprintf(tw, "%s\tDAMAGED: %s\n", label, e)
		}
		if len(r.Tables) > 0 {
			var rows []string
			for _, t := range r.Tables {
				if t.Error != "" {
					rows = append(rows, fmt.Sprintf("%s (cannot be counted: %s)", t.Table, t.Error))
				} else {
					rows = append(rows, fmt.Sprintf("%s %d", t.Table, t.Rows))
				}
			}
			fmt.Fprintf(tw, "Rows\t%s\n", strings.Join(rows, ", "))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	base := filepath.Base(r.Path)
	if p := r.IdentityProblem; p != "" {
		fmt.Fprintf(w, "\n%s%s.\n", strings.ToUpper(p[:1]), p[1:])
	}
	switch {
	case r.Damaged():
		fmt.Fprintf(w, "\nThe store is damaged, and tend refuses to work with it. Keep the file as it is: copy %s (and %s-wal, if there is one) aside before anything else. "+
			"Then restore %s from a backup; or move %s and %s aside to start a new, empty store (history, holds and rollback snapshots are lost then).\n",
			base, base, r.Path, base, marker)
	case r.IdentityProblem != "":
	case !r.Exists:
		fmt.Fprintf(w, "\nThere is no store yet; tend creates it when a command first needs it.\n")
	default:
		fmt.Fprintf(w, "\nThe store is whole.\n")
	}
	return nil
}

// printPostgresCheck is tend store check of a PostgreSQL store: what tend
// can see of it (the server checks its own pages).
func printPostgresCheck(w io.Writer, r *state.Report) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if !r.Exists {
		fmt.Fprintf(tw, "Store\t%s (PostgreSQL): %s\n", r.Path, r.Absent)
	} else {
		fmt.Fprintf(tw, "Store\t%s (PostgreSQL)\n", r.Path)
		if r.Identity != nil {
			fmt.Fprintf(tw, "Identity\t%s\n", r.Identity)
		}
		fmt.Fprintf(tw, "Schema\tversion %d (this tend knows up to %d)\n", r.SchemaVersion, r.KnownSchema)
		fmt.Fprintf(tw, "Integrity\tnot checked by tend: PostgreSQL looks after its own pages\n")
		for _, e := range r.Errors {
			fmt.Fprintf(tw, "\tPROBLEM: %s\n", e)
		}
		var rows []string
		for _, t := range r.Tables {
			if t.Error != "" {
				rows = append(rows, fmt.Sprintf("%s (cannot be counted: %s)", t.Table, t.Error))
			} else {
				rows = append(rows, fmt.Sprintf("%s %d", t.Table, t.Rows))
			}
		}
		fmt.Fprintf(tw, "Rows\t%s\n", strings.Join(rows, ", "))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	switch {
	case !r.Exists:
		fmt.Fprintf(w, "\nThere is no store in this database yet; tend creates its tables when a command first needs them.\n")
	case r.Damaged():
		fmt.Fprintf(w, "\nSome of the store cannot be read (above).\n")
	default:
		fmt.Fprintf(w, "\nThe store's tables are all there and readable.\n")
	}
	return nil
}

func newStoreMigrateCmd() *cobra.Command {
	var ef engineFlags
	var to string
	cmd := &cobra.Command{
		Use:   "migrate --to postgres://USER@HOST:PORT/DATABASE",
		Short: "Copy the SQLite state store into an empty PostgreSQL database",
		Long: `migrate copies every record of the SQLite store STATE_DIR/state.db into the
PostgreSQL database --to names: the revisions (with their numbers), holds,
source snapshots, contracts, the backup catalog and drills, scaling targets
and decisions, usage samples and the store's identity, in one transaction.
Then it counts the rows of each table on both sides, and fails if any
differ. The database must be empty of tend's records; a store whose apply
lock is held (tend is applying) is refused. The SQLite store is left as it
was: run tend with --store or $TEND_STORE set to the same URL from then on.

Give the password by PGPASSWORD or ~/.pgpass; one in the URL is never shown.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if to == "" || !state.IsPostgresURL(to) {
				return fmt.Errorf("--to: want a PostgreSQL URL (postgres://USER@HOST:PORT/DATABASE)")
			}
			dir, err := ef.resolvedStateDir()
			if err != nil {
				return err
			}
			src, err := state.Open(filepath.Join(dir, "state.db"))
			if err != nil {
				return err
			}
			defer src.Close()
			if err := src.QuickCheck(cmd.Context()); err != nil {
				return err
			}
			r, err := src.CopyTo(cmd.Context(), to)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			var rows []string
			for _, t := range r.Tables {
				rows = append(rows, fmt.Sprintf("%s %d", t.Table, t.Rows))
			}
			fmt.Fprintf(out, "Copied %s (%s) to %s in %s: %d rows, the same count in every table.\n",
				r.From, r.Identity, r.To, r.Elapsed.Round(time.Millisecond), r.Rows)
			fmt.Fprintf(out, "Rows: %s.\n", strings.Join(rows, ", "))
			fmt.Fprintf(out, "The SQLite store is left as it was. From now on run tend with --store %s (or $TEND_STORE).\n", r.To)
			return nil
		},
	}
	cmd.Flags().StringVar(&ef.stateDir, "state-dir", "", "where tend keeps its state (default $TEND_STATE_DIR, else ~/.local/state/tend)")
	cmd.Flags().StringVar(&to, "to", "", "the PostgreSQL database to copy the store into (postgres://USER@HOST:PORT/DATABASE)")
	return cmd
}
