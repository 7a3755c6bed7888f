package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"github.com/tendhq/tend/reconcile"
)

func newApplyCmd() *cobra.Command {
	ef := engineFlags{writes: true}
	var output string
	cmd := &cobra.Command{
		Use:   "apply [DIR | PLANFILE]",
		Short: "Change the fleet to match the desired state, verify, roll back on failure",
		Long: `apply plans DIR (default: the current directory) and carries the plan out: wave
after wave in dependency order, at most -parallelism servers at once, each
with its rollout strategy, verified by its checks. A change that fails
verification is rolled back to the last verified revision by itself, and held:
later applies do not try it again until the desired state changes or
"tend retry SERVER" is run. Servers that depend on a failed one are not
changed.

Given a file written by "tend plan -out", apply carries out exactly that plan,
or refuses if the fleet or the desired state changed since it was made.

Exit status: 0 every change verified (or nothing to do), 1 an error or a
failed, rolled back or blocked server.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			target := dirArg(args)
			var saved *reconcile.Plan
			var src *reconcile.Source
			e, closeFn, err := ef.newEngine(cmd.OutOrStdout(), cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			defer closeFn()
			if st, err := os.Stat(target); err == nil && !st.IsDir() {
				saved, src, err = loadSavedPlan(e, target, ef)
				if err != nil {
					return err
				}
			} else {
				src, err = ef.loadSource(cmd, target, true)
				if err != nil {
					return err
				}
			}
			if ef.parallelism == 0 {
				e.Parallelism = src.Config.Tend.Parallelism
			}
			out := cmd.OutOrStdout()
			p, res, err := e.ApplySource(cmd.Context(), src, saved)
			if err != nil {
				return releaseRefused(cmd, src, err, ef.noColor)
			}
			printDiags(cmd.ErrOrStderr(), sourceFiles(src), p.Diagnostics, ef.noColor)
			if output == "json" {
				return writeJSONResult(cmd, p, res)
			}
			if !p.HasChanges() {
				reconcile.RenderPlan(out, p, useColor(out, ef.noColor))
				return nil
			}
			fmt.Fprintln(out)
			return summarize(cmd, res)
		},
	}
	ef.register(cmd)
	ef.registerTarget(cmd)
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	return cmd
}

func writeJSONResult(cmd *cobra.Command, p *reconcile.Plan, res *reconcile.ApplyResult) error {
	if err := writeJSON(cmd.OutOrStdout(), map[string]any{"plan": p, "result": res}); err != nil {
		return err
	}
	if res != nil && res.Failed() {
		return exitError{1}
	}
	return nil
}

// summarize prints one line per server and the totals.
func summarize(cmd *cobra.Command, res *reconcile.ApplyResult) error {
	out := cmd.OutOrStdout()
	counts := map[string]int{}
	for _, s := range res.Servers {
		counts[s.Outcome]++
		fmt.Fprintf(out, "  %-12s %-12s %s\n", s.Server, s.Outcome, s.Message)
	}
	fmt.Fprintf(out, "\nApply complete: %d verified, %d rolled back, %d failed, %d blocked, %d held, %d deleted.\n",
		counts[reconcile.ResultVerified], counts[reconcile.ResultRolledBack], counts[reconcile.ResultFailed],
		counts[reconcile.ResultBlocked], counts[reconcile.ResultHeld], counts[reconcile.ResultDeleted])
	if n := counts[reconcile.ResultKept]; n > 0 {
		fmt.Fprintf(out, "%d kept: they left the desired state, but were not deleted (see above).\n", n)
	}
	if n := counts[reconcile.ResultWaiting]; n > 0 {
		fmt.Fprintf(out, "%d waiting for a change window (tend apply -ignore-windows applies them now).\n", n)
	}
	if res.Failed() {
		return exitError{1}
	}
	return nil
}

// loadSavedPlan reads a plan file and the source snapshot it was made from.
func loadSavedPlan(e *reconcile.Engine, path string, ef engineFlags) (*reconcile.Plan, *reconcile.Source, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	var sp savedPlan
	if err := json.Unmarshal(b, &sp); err != nil || sp.Plan == nil || sp.FormatVersion == 0 {
		return nil, nil, fmt.Errorf("%s is not a plan written by tend plan -out", path)
	}
	if sp.FormatVersion != reconcile.PlanFormatVersion {
		return nil, nil, fmt.Errorf("%s was written by another version of tend (plan format %d, this tend reads %d); make a new plan", path, sp.FormatVersion, reconcile.PlanFormatVersion)
	}
	files, err := e.Store.GetSource(sp.SourceRevision)
	if err != nil {
		return nil, nil, fmt.Errorf("the source %s of the plan is not in the state store (%v); make a new plan", sp.SourceRevision, err)
	}
	opts, err := ef.options(true)
	if err != nil {
		return nil, nil, err
	}
	src, _, diags := reconcile.LoadSnapshot(sp.SourceDir, sp.SourceRevision, files, opts)
	if diags.HasErrors() {
		return nil, nil, fmt.Errorf("the source of the plan no longer loads: %s", diags.Error())
	}
	if len(ef.targets) > 0 {
		return nil, nil, fmt.Errorf("-target applies to planning; the saved plan %s already says what it covers", path)
	}
	e.Targets = sp.Plan.Targets
	return sp.Plan, src, nil
}
