package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/hashicorp/hcl/v2"
	"github.com/spf13/cobra"
	"github.com/tendhq/tend/reconcile"
)

// savedPlan is the file `tend plan -out` writes: the plan and where its
// source lives (the snapshot itself is in the state store).
type savedPlan struct {
	*reconcile.Plan
	SourceDir string `json:"source_dir"`
}

func newPlanCmd() *cobra.Command {
	var ef engineFlags
	var output, out string
	var detailed bool
	cmd := &cobra.Command{
		Use:   "plan [DIR]",
		Short: "Show what apply would change, without changing anything",
		Long: `plan reads the desired state in DIR (default: the current directory), observes
what is running, and prints what apply would do: for each server an action
(+ create, ~ update, -/+ replace, - delete, ! held or blocked) with the reason
and the changed fields. Sensitive values show as (sensitive).

With -out FILE the plan is saved, bound to the source revision and to what
was observed; "tend apply FILE" applies exactly it, or refuses when the fleet
or the desired state moved since.

Exit status: 0 success, 1 error; with -detailed-exitcode 0 no changes,
1 error, 2 changes present.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := dirArg(args)
			if output != "text" && output != "json" {
				return fmt.Errorf("-o %q: the output format is text or json", output)
			}
			src, err := ef.loadSource(cmd, dir, true)
			if err != nil {
				return err
			}
			e, closeFn, err := ef.newEngine(nil, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			defer closeFn()
			p, err := e.Plan(cmd.Context(), src)
			if err != nil {
				return releaseRefused(cmd, src, err, ef.noColor)
			}
			printDiags(cmd.ErrOrStderr(), sourceFiles(src), p.Diagnostics, ef.noColor)
			if err := planCapacity(cmd, e, src, ef.noColor); err != nil {
				return err
			}
			if out != "" {
				if err := e.Store.PutSource(src.Revision, src.Files); err != nil {
					return err
				}
				b, _ := json.MarshalIndent(savedPlan{Plan: p, SourceDir: dir}, "", "  ")
				if err := os.WriteFile(out, append(b, '\n'), 0o600); err != nil {
					return err
				}
			}
			if output == "json" {
				if err := writeJSON(cmd.OutOrStdout(), p); err != nil {
					return err
				}
			} else {
				reconcile.RenderPlan(cmd.OutOrStdout(), p, useColor(cmd.OutOrStdout(), ef.noColor))
				if out != "" {
					fmt.Fprintf(cmd.OutOrStdout(), "\nSaved the plan to %s. Apply exactly it with: tend apply %s\n", out, out)
				}
			}
			if detailed && p.HasChanges() {
				return exitError{2}
			}
			return nil
		},
	}
	ef.register(cmd)
	ef.registerTarget(cmd)
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	cmd.Flags().StringVar(&out, "out", "", "save the plan to FILE for tend apply FILE")
	cmd.Flags().BoolVar(&detailed, "detailed-exitcode", false, "exit 0 with no changes, 2 with changes, 1 on error")
	return cmd
}

func dirArg(args []string) string {
	if len(args) == 1 {
		return args[0]
	}
	return "."
}

// releaseRefused prints the diagnostics of a plan refused for what it
// would deploy (a locked digest that moved, a vulnerable version with
// block_vulnerable), each at its version attribute; other errors pass.
func releaseRefused(cmd *cobra.Command, src *reconcile.Source, err error, noColor bool) error {
	var re *reconcile.ReleaseError
	if !errors.As(err, &re) {
		return err
	}
	files := sourceFiles(src)
	for _, d := range re.Diags {
		if d.Subject != nil && files[d.Subject.Filename] == nil {
			for name, f := range loaderFiles(hcl.Diagnostics{d}) {
				files[name] = f
			}
		}
	}
	printDiags(cmd.ErrOrStderr(), files, re.Diags, noColor)
	n, _ := countDiags(re.Diags)
	return fmt.Errorf("%d %s in what the plan would deploy; nothing was planned", n, plural(n, "error", "errors"))
}
