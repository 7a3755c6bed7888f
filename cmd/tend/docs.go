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
		Short: "Write the fleet's documentation: servers, endpoints, configuration, tools",
		Long: `docs writes the documentation of the fleet in DIR (default: the current
directory) into --out: for each server its version, endpoints and
configuration, and the tools (with their input schemas), resources and prompts
it exposes, in Markdown (an API reference and a configuration reference) and
in JSON (fleet.json). Sensitive values show as (sensitive).

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
			files, err := fleetdocs.Generate(src.Config, contracts, fleetdocs.Options{})
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
