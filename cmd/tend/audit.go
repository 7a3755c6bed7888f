package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/tendhq/tend/reconcile/versions"
)

// auditReport is the JSON form of tend audit -o json.
type auditReport struct {
	FormatVersion int                `json:"format_version"`
	Source        string             `json:"source"`
	Servers       int                `json:"servers_checked"` // servers that name a package
	Findings      []versions.Finding `json:"findings"`
	Errors        []string           `json:"errors,omitempty"`
}

func newAuditCmd() *cobra.Command {
	var ef engineFlags
	var output, source string
	cmd := &cobra.Command{
		Use:   "audit [DIR]",
		Short: "Report servers whose running or desired version a security advisory affects",
		Long: `audit reads security advisories in the OSV format (tend { advisories {
source = "DIR or URL" } }, or --advisories) and reports every server whose
running version (its last verified apply, from the state store) or desired
version (the locked version of a constraint, or the exact version) an
advisory affects: the advisory id and aliases, its severity as given (CVSS
vector, database severity), its summary, and the first fixed version that
the server's constraint allows (or that none does).

A server's package is its release block's package = "pkg:…", else
pkg:oci/NAME?repository_url=REPOSITORY read from its image.

Exit status: 0 nothing affected, 1 an error (an advisory source that
cannot be read, or an advisory that cannot be evaluated), 2 something is
affected.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "text" && output != "json" {
				return fmt.Errorf("-o %q: the output format is text or json", output)
			}
			cfg, _, err := loadForLock(cmd, &ef.loadFlags, dirArg(args), false)
			if err != nil {
				return err
			}
			if source == "" && cfg.Tend.Advisories != nil {
				source = cfg.Tend.Advisories.Source
			}
			if source == "" {
				return fmt.Errorf("no advisories: name them in the tend block (advisories { source = \"DIR or URL\" }) or with --advisories")
			}
			db, err := versions.LoadAdvisories(cmd.Context(), source, nil)
			if err != nil {
				return err
			}
			running, err := runningVersions(&ef, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			findings, errs := versions.Audit(versions.AuditInput{Config: cfg, Running: running, Advisories: db})
			rep := auditReport{FormatVersion: 1, Source: db.Source, Findings: findings}
			if rep.Findings == nil {
				rep.Findings = []versions.Finding{}
			}
			for _, s := range cfg.Servers {
				if s.Package != "" {
					rep.Servers++
				}
			}
			for _, e := range errs {
				rep.Errors = append(rep.Errors, e.Error())
			}
			if output == "json" {
				if err := writeJSON(cmd.OutOrStdout(), rep); err != nil {
					return err
				}
			} else {
				for _, e := range rep.Errors {
					fmt.Fprintf(cmd.ErrOrStderr(), "Error: %s\n", e)
				}
				if err := printAudit(cmd.OutOrStdout(), rep, len(db.Records)); err != nil {
					return err
				}
			}
			switch {
			case len(errs) > 0:
				return exitError{1}
			case len(findings) > 0:
				return exitError{2}
			}
			return nil
		},
	}
	ef.register(cmd)
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	cmd.Flags().StringVar(&source, "advisories", "", "the advisories: a folder of OSV .json files or an http(s) URL (default: the tend block's advisories)")
	return cmd
}

func printAudit(w io.Writer, rep auditReport, records int) error {
	if len(rep.Findings) == 0 {
		fmt.Fprintf(w, "No advisory affects the %d %s that name a package (%d %s read from %s).\n",
			rep.Servers, plural(rep.Servers, "server", "servers"), records, plural(records, "advisory", "advisories"), rep.Source)
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVER\tVERSION\tIN\tADVISORY\tALIASES\tSEVERITY\tFIXED\tSUMMARY")
	servers := map[string]bool{}
	for _, f := range rep.Findings {
		servers[f.Server] = true
		fixed := f.Fixed
		if fixed == "" {
			fixed = "none: " + f.FixedNote
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", f.Server, f.Version, strings.Join(f.In, ","), f.ID,
			dash(strings.Join(f.Aliases, ",")), dash(versions.SeverityText(f.Severity)), fixed, dash(f.Summary))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	names := make([]string, 0, len(servers))
	for n := range servers {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintf(w, "\n%d %s affect %d of %d %s: %s.\n", len(rep.Findings), plural(len(rep.Findings), "finding", "findings"),
		len(names), rep.Servers, plural(rep.Servers, "server", "servers"), strings.Join(names, ", "))
	return nil
}
