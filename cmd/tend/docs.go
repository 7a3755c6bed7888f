package main

import (
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"
	"github.com/tendhq/tend/reconcile/fleetdocs"
)

func newDocsCmd() *cobra.Command {
	var ef engineFlags
	var out string
	var live bool
	cmd := &cobra.Command{
		Use:   "docs [DIR]",
		Short: "Write the fleet's documentation: README, API, CONFIGURATION, CHANGELOG, TROUBLESHOOTING",
		Long: `docs writes the documentation of the fleet in DIR (default: the current
directory) into --out: README.md (the servers, versions, providers),
API.md and servers/NAME.md (the tools with their input schemas, resources
and prompts each server exposes), CONFIGURATION.md (how each is run),
CHANGELOG.md (each version tend verified, newest first: when, from which
commit, what changed and what its API contract added, changed or removed),
TROUBLESHOOTING.md (each server's checks and what their failures mean, the
failures tend recorded, how to read logs, retry, roll back and restore) and
fleet.json. Sensitive values show as (sensitive).

What a server exposes is the API contract recorded when its last verified
revision was verified by an mcp check; with --live it is asked of its running
replicas instead. Regenerating changes nothing when nothing changed; files
that no longer belong to the docs are removed, and files docs did not write
are left alone.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			src, err := ef.loadSource(cmd, dirArg(args), false)
			if err != nil {
				return err
			}
			e, closeFn, err := ef.newEngine(nil, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			defer closeFn()
			contracts, notes, err := e.Contracts(cmd.Context(), src, live)
			if err != nil {
				return err
			}
			for _, n := range notes {
				fmt.Fprintf(cmd.ErrOrStderr(), "warning: %s\n", n)
			}
			history, err := e.DocsHistory(src.Config)
			if err != nil {
				return err
			}
			files, err := fleetdocs.Generate(src.Config, contracts, fleetdocs.Options{History: history})
			if err != nil {
				return err
			}
			changed, err := fleetdocs.Write(out, files)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if len(changed) == 0 {
				fmt.Fprintf(w, "The docs in %s are up to date (%d files).\n", out, len(files))
				return nil
			}
			for _, c := range changed {
				fmt.Fprintf(w, "changed %s\n", filepath.Join(out, c))
			}
			fmt.Fprintf(w, "%d of %d files changed in %s.\n", len(changed), len(files), out)
			return nil
		},
	}
	ef.register(cmd)
	cmd.Flags().StringVar(&out, "out", "fleet-docs", "the directory to write the docs into")
	cmd.Flags().BoolVar(&live, "live", false, "ask the running servers for their contracts instead of using the recorded ones")
	return cmd
}
