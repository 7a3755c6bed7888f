package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/spf13/cobra"
	"github.com/tendhq/tend/providers"
	"github.com/tendhq/tend/reconcile"
	"github.com/tendhq/tend/reconcile/capacity"
	"github.com/tendhq/tend/reconcile/state"
)

// capacityReport is the JSON form of `tend capacity -o json`.
type capacityReport struct {
	FormatVersion int `json:"format_version"`
	*capacity.Report
	Diagnostics []jsonDiag `json:"diagnostics"`
}

// capacityFormatVersion is the version of capacityReport.
const capacityFormatVersion = 1

// statsParallel bounds the replicas sampled at once by tend capacity.
const statsParallel = 8

func newCapacityCmd() *cobra.Command {
	var ef engineFlags
	var output string
	var sample bool
	var window time.Duration
	cmd := &cobra.Command{
		Use:   "capacity [DIR]",
		Short: "Show what each host can hold, what its servers ask for and use, and what would not fit",
		Long: `capacity reads the desired state in DIR (default: the current directory), asks
each provider what its host can hold (process and systemd: this machine's CPUs
and memory; docker: the Engine's; kubernetes: the allocatable of the nodes that
take pods, summed), observes what runs, and prints for every host:

  capacity          its CPU and memory
  requested now     resources × the replicas running
  requested at max  resources × max(replicas, scaling.max)
  used now          a live sample of every running replica (skip it with
                    --sample=false)
  used (average)    the average and the peak of what tend run recorded over
  used (peak)       the last --window (tend run samples every replica every
                    --usage-interval, 1m by default); a host's peak is the
                    sum of its servers' peaks, an upper bound
  headroom          capacity - requested at max (negative: short)

and which servers would not fit at their max replicas. Servers are placed by
name, every server's replicas first, then each one's growth to its max.
Servers without a resources block cannot be counted; they are listed as
unsized. Only the servers whose selector picks this host are counted.

Servers that would not fit are warnings; with tend { overcommit_percent }
set, those that would not fit even on capacity × overcommit_percent / 100 are
errors, as in tend plan.

Exit status: 0 success, 1 errors.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "text" && output != "json" {
				return fmt.Errorf("-o %q: the output format is text or json", output)
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
			r := capacityReportOf(cmd.Context(), cmd.ErrOrStderr(), e, src, sample, window)
			diags := r.Diagnostics()
			files := sourceFiles(src)
			if output == "json" {
				if err := writeJSON(cmd.OutOrStdout(), capacityReport{capacityFormatVersion, r, toJSONDiags(files, diags)}); err != nil {
					return err
				}
			} else {
				printDiags(cmd.ErrOrStderr(), files, diags, ef.noColor)
				if err := renderCapacity(cmd.OutOrStdout(), r); err != nil {
					return err
				}
			}
			if r.HasErrors() {
				return exitError{1}
			}
			return nil
		},
	}
	ef.register(cmd)
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	cmd.Flags().BoolVar(&sample, "sample", true, "sample what every running replica uses now (about 200 ms, replicas in parallel)")
	cmd.Flags().DurationVar(&window, "window", time.Hour, "the span of recorded samples the average and peak are of (0: leave them out)")
	return cmd
}

// capacityReportOf gathers what a report needs (the providers' capacity,
// the observed replicas, a live sample of their use) and computes it. A
// provider that cannot be observed is reported on warn, and the report
// then says nothing of what is requested now.
func capacityReportOf(ctx context.Context, warn io.Writer, e *reconcile.Engine, src *reconcile.Source, sample bool, window time.Duration) *capacity.Report {
	cfg := src.Config
	get := providerGetter(e, src)
	caps, errs := capacity.ReadCapacities(ctx, capacity.Keys(cfg, e.Host.Matches, false), get)
	in := capacity.Input{Config: cfg, Selects: e.Host.Matches, Capacities: caps, Errors: errs}
	observed, err := e.Observe(ctx, cfg)
	if err != nil {
		fmt.Fprintf(warn, "Warning: %v; what is requested now is not shown.\n", err)
	} else {
		in.Current = capacity.CountReplicas(cfg, observed)
	}
	if sample {
		in.Usage = capacity.SampleUsage(ctx, cfg, e.Host.Matches, observed, get, statsParallel)
	}
	recorded := false
	if window > 0 {
		sums, err := e.Store.UsageSince(time.Now().Add(-window))
		if err != nil {
			fmt.Fprintf(warn, "Warning: %v; the average and peak of recorded use are not shown.\n", err)
		}
		in.Usage, recorded = withRecorded(in.Usage, sums)
	}
	r := capacity.Compute(in)
	if recorded {
		r.UsageWindow = shortDuration(window)
	}
	return r
}

// withRecorded adds to usage the average and peak of each server's
// recorded samples, and reports whether any server had one.
func withRecorded(usage map[string]capacity.Usage, sums map[string]state.UsageSummary) (map[string]capacity.Usage, bool) {
	if len(sums) == 0 {
		return usage, false
	}
	if usage == nil {
		usage = map[string]capacity.Usage{}
	}
	for name, s := range sums {
		u := usage[name]
		u.Avg = &capacity.Amount{MilliCPU: s.AvgMilliCPU, MemoryBytes: s.AvgMemoryBytes}
		u.Peak = &capacity.Amount{MilliCPU: s.PeakMilliCPU, MemoryBytes: s.PeakMemoryBytes}
		u.Samples = s.Samples
		usage[name] = u
	}
	return usage, true
}

func providerGetter(e *reconcile.Engine, src *reconcile.Source) capacity.ProviderFunc {
	return func(key string) (providers.Provider, error) { return e.Registry.Get(src.Config, key, e.ProvEnv) }
}

// planCapacity is tend plan's capacity check: the servers of this host at
// their max replicas against what their hosts have. It asks each provider
// of a server with resources for its capacity, once, and nothing when no
// server has resources; a targeted plan asks only the providers of its
// servers (whose hosts count every server on them). Its findings are
// printed as diagnostics; an error among them fails the plan.
func planCapacity(cmd *cobra.Command, e *reconcile.Engine, src *reconcile.Source, noColor bool) error {
	keys := capacity.Keys(src.Config, e.Host.Matches, true)
	if len(e.Targets) > 0 {
		targeted, err := reconcile.TargetSet(src.Config, e.Targets)
		if err != nil {
			return err
		}
		keys = slices.DeleteFunc(keys, func(k string) bool {
			for name := range targeted {
				if src.Config.Servers[name].Provider == k {
					return false
				}
			}
			return true
		})
	}
	if len(keys) == 0 {
		return nil
	}
	caps, errs := capacity.ReadCapacities(cmd.Context(), keys, providerGetter(e, src))
	r := capacity.Compute(capacity.Input{Config: src.Config, Selects: e.Host.Matches, Capacities: caps, Errors: errs})
	diags := r.Diagnostics()
	printDiags(cmd.ErrOrStderr(), sourceFiles(src), diags, noColor)
	if n, _ := countDiags(diags); n > 0 {
		return fmt.Errorf("%d %s: the servers would need more than their hosts have, beyond overcommit_percent (tend capacity shows each host); nothing was planned",
			n, plural(n, "capacity error", "capacity errors"))
	}
	return nil
}

// sourceFiles parses the snapshot's HCL files again, under the names the
// loader gave them, for the snippets of diagnostics found after loading.
func sourceFiles(src *reconcile.Source) map[string]*hcl.File {
	p := hclparse.NewParser()
	for name, b := range src.Files {
		if strings.HasSuffix(name, ".hcl") {
			_, _ = p.ParseHCL(b, filepath.Join(src.Dir, filepath.FromSlash(name)))
		}
	}
	return p.Files()
}

// renderCapacity writes the report for a person: a table per host.
func renderCapacity(w io.Writer, r *capacity.Report) error {
	if len(r.Hosts) == 0 && len(r.Unknown) == 0 {
		_, err := fmt.Fprintln(w, "No provider to report on.")
		return err
	}
	for i, h := range r.Hosts {
		if i > 0 {
			fmt.Fprintln(w)
		}
		if err := renderHost(w, h, r.OvercommitPercent, r.UsageWindow); err != nil {
			return err
		}
	}
	for _, u := range r.Unknown {
		fmt.Fprintf(w, "\n%s: capacity unknown: %s.\n", u.Provider, strings.TrimSuffix(u.Reason, "."))
		if len(u.Servers) > 0 {
			fmt.Fprintf(w, "  Not checked: %s.\n", strings.Join(u.Servers, ", "))
		}
	}
	return nil
}

func renderHost(w io.Writer, h *capacity.Host, overcommit int, window string) error {
	if h.Cluster {
		fmt.Fprintf(w, "Cluster %s (%d schedulable %s; its capacity is the sum of their allocatable)\n", h.Name, h.Nodes, plural(h.Nodes, "node", "nodes"))
	} else {
		fmt.Fprintf(w, "Host %s (%s)\n", h.Name, strings.Join(h.Providers, ", "))
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  \tCPU\tMEMORY")
	line := func(label, cpu, mem, note string) {
		if note != "" {
			mem += "\t" + note
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", label, cpu, mem)
	}
	row := func(label string, a capacity.Amount, note string) {
		line(label, known(a.MilliCPU, h.Capacity.MilliCPU, capacity.FormatCPU), known(a.MemoryBytes, h.Capacity.MemoryBytes, capacity.FormatBytes), note)
	}
	row("capacity", h.Capacity, "")
	if h.Limit != nil {
		row("overcommit limit", *h.Limit, fmt.Sprintf("overcommit_percent = %d", overcommit))
	}
	if h.RequestedNow != nil {
		line("requested now", capacity.FormatCPU(h.RequestedNow.MilliCPU), capacity.FormatBytes(h.RequestedNow.MemoryBytes), "")
	}
	line("requested at max", capacity.FormatCPU(h.RequestedAtMax.MilliCPU), capacity.FormatBytes(h.RequestedAtMax.MemoryBytes), "")
	sampledNow, recorded := 0, 0
	for _, s := range h.Servers {
		if s.Used != nil && s.Used.Now != nil {
			sampledNow++
		}
		if s.Used != nil && s.Used.Avg != nil {
			recorded++
		}
	}
	for _, u := range []struct {
		label string
		a     *capacity.Amount
		n     int
		note  string
	}{
		{"used now", h.Used.Now, sampledNow, ""},
		{"used (average)", h.Used.Avg, recorded, ", the last " + window},
		{"used (peak)", h.Used.Peak, recorded, ", the last " + window + "; the sum of each server's peak"},
	} {
		if u.a != nil {
			line(u.label, capacity.FormatCPU(u.a.MilliCPU), capacity.FormatBytes(u.a.MemoryBytes),
				fmt.Sprintf("%d of %d %s%s", u.n, len(h.Servers), plural(len(h.Servers), "server", "servers"), u.note))
		}
	}
	row("headroom", h.Headroom, "")
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(h.Servers) == 0 {
		_, err := fmt.Fprintln(w, "\n  No server runs on it.")
		return err
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	header := "  SERVER\tPER REPLICA\tREPLICAS\tMAX\tAT MAX\tUSED NOW"
	if window != "" {
		header += "\tAVG " + window + "\tPEAK " + window
	}
	fmt.Fprintln(tw, header+"\tFITS")
	for _, s := range h.Servers {
		per, atMax, fits := "unsized", "-", "-"
		if s.PerReplica != nil {
			per, atMax = request(*s.PerReplica), request(*s.RequestedAtMax)
		}
		if s.Fits != nil {
			fits = fmt.Sprintf("%d/%d", *s.Fits, s.MaxReplicas)
		}
		now := "-"
		if s.Current != nil {
			now = fmt.Sprint(*s.Current)
		}
		used := "-"
		if s.Used != nil && s.Used.Now != nil {
			used = amount(*s.Used.Now)
		}
		if window != "" {
			avg, peak := "-", "-"
			if s.Used != nil && s.Used.Avg != nil {
				avg, peak = amount(*s.Used.Avg), amount(*s.Used.Peak)
			}
			used += "\t" + avg + "\t" + peak
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%d\t%s\t%s\t%s\n", s.Name, per, replicasNow(now, s.Replicas), s.MaxReplicas, atMax, used, fits)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(h.WouldNotFit) > 0 {
		fmt.Fprintf(w, "\n  Would not fit at max: %s.\n", strings.Join(h.WouldNotFit, ", "))
	}
	if len(h.Unsized) > 0 {
		fmt.Fprintf(w, "  Not counted (no resources block): %s.\n", strings.Join(h.Unsized, ", "))
	}
	return nil
}

// replicasNow is "running/desired".
func replicasNow(now string, desired int) string { return fmt.Sprintf("%s/%d", now, desired) }

// amount writes an amount as "500m, 1 GiB".
func amount(a capacity.Amount) string {
	return capacity.FormatCPU(a.MilliCPU) + ", " + capacity.FormatBytes(a.MemoryBytes)
}

// request writes what a server asks for as "500m, 1 GiB", with "-" for a
// figure its resources block does not set.
func request(a capacity.Amount) string {
	cpu, mem := "-", "-"
	if a.MilliCPU > 0 {
		cpu = capacity.FormatCPU(a.MilliCPU)
	}
	if a.MemoryBytes > 0 {
		mem = capacity.FormatBytes(a.MemoryBytes)
	}
	return cpu + ", " + mem
}

// known writes v, or "?" where the capacity's figure is unknown.
func known(v, capFigure int64, format func(int64) string) string {
	if capFigure <= 0 {
		return "?"
	}
	return format(v)
}

// shortDuration writes d as "1h", "90m" or "30s": time.Duration's form
// without its zero minutes and seconds.
func shortDuration(d time.Duration) string {
	out := d.String()
	if strings.HasSuffix(out, "m0s") {
		out = strings.TrimSuffix(out, "0s")
	}
	if strings.HasSuffix(out, "h0m") {
		out = strings.TrimSuffix(out, "0m")
	}
	return out
}
