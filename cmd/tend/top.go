package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/spf13/cobra"
	"github.com/tendhq/tend/providers"
	"github.com/tendhq/tend/reconcile"
	"github.com/tendhq/tend/spec"
)

// topParallel is how many replicas are sampled at once; a sample takes
// 200 ms (process, systemd) to a second (docker).
const topParallel = 16

// topStatsTimeout bounds one replica's sample, so that one slow backend
// does not hold up the view.
const topStatsTimeout = 10 * time.Second

func newTopCmd() *cobra.Command {
	var ef engineFlags
	var output, dir string
	var interval time.Duration
	var once bool
	cmd := &cobra.Command{
		Use:   "top [SERVER...]",
		Short: "Show the CPU, memory, threads and connections of every replica, live",
		Long: `top samples every replica of the servers of the desired state in --dir (and
of the orphans) through its provider, and shows per server and replica its
state, CPU (percent of one core, or of the CPU limit when resources sets
one), memory (bytes, and percent of the memory limit, else of
the host), threads and established TCP connections, with a total line per
server. "-" is a figure the provider cannot tell. The process and systemd
providers count threads and connections over the replica's process tree,
docker counts the container's tasks and (when the Engine runs on this host)
the connections of its network namespace; kubernetes reports none (it would
need a metrics API).

It refreshes every --interval until interrupted, clearing the screen when
stdout is a terminal. --once prints one sample; -o json prints one sample as
JSON, with null for an unknown figure. Name servers to show only those.
Nothing of a server's spec but its name is shown.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "text" && output != "json" {
				return fmt.Errorf("-o %q: text or json", output)
			}
			if interval <= 0 {
				return fmt.Errorf("--interval %v: want a duration above 0", interval)
			}
			src, err := ef.loadSource(cmd, dir, false)
			if err != nil {
				return err
			}
			e, closeFn, err := ef.newEngine(nil, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			defer closeFn()
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			out := cmd.OutOrStdout()
			if output == "json" || once {
				s, err := sampleTop(ctx, e, src.Config, args)
				if err != nil {
					return err
				}
				if output == "json" {
					err = writeJSON(out, s.json())
				} else {
					err = s.writeText(out)
				}
				if err != nil {
					return err
				}
				if len(s.observeErrs) > 0 {
					return exitError{1}
				}
				return nil
			}
			return liveTop(ctx, out, interval, func(ctx context.Context) (*topSample, error) {
				return sampleTop(ctx, e, src.Config, args)
			})
		},
	}
	ef.register(cmd)
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json (json prints one sample)")
	cmd.Flags().StringVar(&dir, "dir", ".", "the state repository (a directory or a git URL)")
	cmd.Flags().DurationVar(&interval, "interval", 2*time.Second, "how often the view refreshes")
	cmd.Flags().BoolVar(&once, "once", false, "print one sample and exit")
	return cmd
}

// liveTop prints a sample every interval until ctx ends (an interrupt),
// over the last one when w is a terminal, one after the other when not.
func liveTop(ctx context.Context, w io.Writer, interval time.Duration, sample func(context.Context) (*topSample, error)) error {
	tty := false
	if f, ok := w.(*os.File); ok {
		tty = isatty.IsTerminal(f.Fd())
	}
	for first := true; ; first = false {
		t0 := time.Now()
		s, err := sample(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return err
		}
		var buf bytes.Buffer
		if tty {
			buf.WriteString("\x1b[H\x1b[2J") // home, clear the screen
		} else if !first {
			buf.WriteString("\n")
		}
		fmt.Fprintf(&buf, "tend top: %s, every %v (Ctrl-C stops)\n\n", s.at.Local().Format("15:04:05"), interval)
		if err := s.writeText(&buf); err != nil {
			return err
		}
		if _, err := w.Write(buf.Bytes()); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(interval - time.Since(t0)):
		}
	}
}

// topRow is one replica's sample.
type topRow struct {
	server, provider string
	replica          int
	state            providers.State
	stats            providers.Stats
	sampled          bool // stats holds a sample
	err              string
}

// topSample is one look at the fleet.
type topSample struct {
	at   time.Time
	rows []topRow // by server, then replica
	// noStats maps a provider that cannot report resource use to the
	// servers it runs.
	noStats map[string][]string
	// idle lists the servers desired on this host of which no replica
	// is observed.
	idle        []string
	observeErrs []string
}

// sampleTop observes the fleet and samples every replica of the servers
// named (all when none is), topParallel at a time.
func sampleTop(ctx context.Context, e *reconcile.Engine, cfg *spec.Config, servers []string) (*topSample, error) {
	s := &topSample{at: time.Now(), noStats: map[string][]string{}}
	observed, err := e.Observe(ctx, cfg)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		// Observe tells what it could not observe and goes on with the
		// rest.
		s.observeErrs = append(s.observeErrs, err.Error())
	}
	want := map[string]bool{}
	for _, name := range servers {
		want[name] = true
	}
	seen := map[string]bool{}
	var insts []providers.Instance
	for _, list := range observed {
		for _, in := range list {
			seen[in.Server] = true
			if len(want) == 0 || want[in.Server] {
				insts = append(insts, in)
			}
		}
	}
	var unknown []string
	for _, name := range servers {
		if cfg.Servers[name] == nil && !seen[name] {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) > 0 {
		return nil, fmt.Errorf("no server %s in the desired state or running", strings.Join(unknown, ", "))
	}
	for name, srv := range cfg.Servers {
		// A server whose selector leaves this host out runs elsewhere.
		if !seen[name] && srv.Replicas > 0 && e.Host.Matches(srv.Selector) && (len(want) == 0 || want[name]) {
			s.idle = append(s.idle, name)
		}
	}
	sort.Strings(s.idle)
	sort.Slice(insts, func(i, j int) bool {
		if insts[i].Server != insts[j].Server {
			return insts[i].Server < insts[j].Server
		}
		return insts[i].Replica < insts[j].Replica
	})

	s.rows = make([]topRow, len(insts))
	sem := make(chan struct{}, topParallel)
	var wg sync.WaitGroup
	noStats := map[string]map[string]bool{}
	for i, in := range insts {
		s.rows[i] = topRow{server: in.Server, provider: in.Provider, replica: in.Replica, state: in.State}
		p, err := e.Registry.Get(cfg, in.Provider, e.ProvEnv)
		if err != nil {
			s.rows[i].err = err.Error()
			continue
		}
		st, ok := p.(providers.Statser)
		if !ok {
			if noStats[in.Provider] == nil {
				noStats[in.Provider] = map[string]bool{}
			}
			noStats[in.Provider][in.Server] = true
			continue
		}
		// A replica that is not up has no figures to read.
		if in.State != providers.StateRunning && in.State != providers.StateStarting {
			continue
		}
		wg.Add(1)
		go func(row *topRow, in providers.Instance) {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			defer func() { <-sem }()
			sctx, cancel := context.WithTimeout(ctx, topStatsTimeout)
			defer cancel()
			stats, err := st.Stats(sctx, in)
			if err != nil {
				row.err = err.Error()
				return
			}
			row.stats, row.sampled = stats, true
		}(&s.rows[i], in)
	}
	wg.Wait()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	for prov, set := range noStats {
		for name := range set {
			s.noStats[prov] = append(s.noStats[prov], name)
		}
		sort.Strings(s.noStats[prov])
	}
	return s, nil
}

// writeText prints the sample as a table with a total line per server,
// then what it could not show.
func (s *topSample) writeText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVER\tREPLICA\tSTATE\tCPU%\tMEM\tMEM%\tTHREADS\tCONNS")
	for i := 0; i < len(s.rows); {
		j := i
		for j < len(s.rows) && s.rows[j].server == s.rows[i].server {
			j++
		}
		var tot topTotal
		for _, r := range s.rows[i:j] {
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", r.server, r.replica, r.state, strings.Join(topCells(r), "\t"))
			tot.add(r)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.rows[i].server, "total", fmt.Sprintf("%d/%d running", tot.running, j-i), tot.cells())
		i = j
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	notes := s.notes(true)
	if len(s.rows) == 0 {
		notes = append([]string{"No replica is running."}, notes...)
	}
	if len(notes) > 0 {
		fmt.Fprintln(w)
		for _, n := range notes {
			fmt.Fprintln(w, n)
		}
	}
	return nil
}

// notes says, once each, what the table cannot show; with rowErrs, why
// the figures of replicas that run are unknown.
func (s *topSample) notes(rowErrs bool) []string {
	var out []string
	provs := make([]string, 0, len(s.noStats))
	for p := range s.noStats {
		provs = append(provs, p)
	}
	sort.Strings(provs)
	for _, p := range provs {
		out = append(out, fmt.Sprintf("%s: no resource figures (no Statser) for %s", p, strings.Join(s.noStats[p], ", ")))
	}
	for _, r := range s.rows {
		if rowErrs && r.err != "" {
			out = append(out, fmt.Sprintf("%s replica %d: %s", r.server, r.replica, oneLine(r.err, 200)))
		}
	}
	for _, name := range s.idle {
		out = append(out, name+": no replica is observed")
	}
	out = append(out, s.observeErrs...)
	return out
}

// topCells are a row's figure columns, "-" where unknown.
func topCells(r topRow) []string {
	if !r.sampled {
		return []string{"-", "-", "-", "-", "-"}
	}
	st := r.stats
	cells := []string{topPercent(st.CPUPercent), topBytes(st.MemoryBytes), topPercent(st.MemoryPercent), "-", "-"}
	if st.HasThreads {
		cells[3] = strconv.Itoa(st.Threads)
	}
	if st.HasConnections {
		cells[4] = strconv.Itoa(st.Connections)
	}
	return cells
}

// topTotal adds up a server's replicas: each figure over the replicas
// that reported it ("-" when none did). Percentages add up too: 150% is
// one and a half cores, or one and a half replicas' limit.
type topTotal struct {
	running, sampled  int
	cpu, memPct       float64
	mem               int64
	threads, nThreads int
	conns, nConns     int
}

func (t *topTotal) add(r topRow) {
	if r.state == providers.StateRunning {
		t.running++
	}
	if !r.sampled {
		return
	}
	t.sampled++
	t.cpu += r.stats.CPUPercent
	t.mem += r.stats.MemoryBytes
	t.memPct += r.stats.MemoryPercent
	if r.stats.HasThreads {
		t.nThreads++
		t.threads += r.stats.Threads
	}
	if r.stats.HasConnections {
		t.nConns++
		t.conns += r.stats.Connections
	}
}

// cells are the figure columns of the total line, tab-separated.
func (t *topTotal) cells() string {
	c := []string{"-", "-", "-", "-", "-"}
	if t.sampled > 0 {
		c[0], c[1], c[2] = topPercent(t.cpu), topBytes(t.mem), topPercent(t.memPct)
	}
	if t.nThreads > 0 {
		c[3] = strconv.Itoa(t.threads)
	}
	if t.nConns > 0 {
		c[4] = strconv.Itoa(t.conns)
	}
	return strings.Join(c, "\t")
}

func topPercent(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) }

// topBytes is a size in binary units: 512B, 12.3KiB, 45.6MiB, 1.2GiB.
func topBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatInt(n, 10) + "B"
	}
	f, i := float64(n)/unit, 0
	for f >= unit && i < 4 {
		f /= unit
		i++
	}
	return strconv.FormatFloat(f, 'f', 1, 64) + []string{"KiB", "MiB", "GiB", "TiB", "PiB"}[i]
}

// topJSONRow is one replica in -o json; a figure the provider cannot tell
// is null. The field names are stable.
type topJSONRow struct {
	Server        string   `json:"server"`
	Replica       int      `json:"replica"`
	Provider      string   `json:"provider"`
	State         string   `json:"state"`
	CPUPercent    *float64 `json:"cpu_percent"`
	MemoryBytes   *int64   `json:"memory_bytes"`
	MemoryPercent *float64 `json:"memory_percent"`
	Threads       *int     `json:"threads"`
	Connections   *int     `json:"connections"`
	// Error says why the figures of a replica that runs are unknown.
	Error string `json:"error,omitempty"`
}

type topJSON struct {
	SampledAt time.Time    `json:"sampled_at"`
	Replicas  []topJSONRow `json:"replicas"`
	// Notes say what the replicas cannot: providers without figures,
	// servers with no replica, providers that could not be observed.
	Notes []string `json:"notes"`
}

func (s *topSample) json() topJSON {
	out := topJSON{SampledAt: s.at.UTC(), Replicas: []topJSONRow{}, Notes: []string{}}
	for _, r := range s.rows {
		j := topJSONRow{Server: r.server, Replica: r.replica, Provider: r.provider, State: string(r.state), Error: r.err}
		if r.sampled {
			st := r.stats
			j.CPUPercent, j.MemoryBytes, j.MemoryPercent = &st.CPUPercent, &st.MemoryBytes, &st.MemoryPercent
			if st.HasThreads {
				j.Threads = &st.Threads
			}
			if st.HasConnections {
				j.Connections = &st.Connections
			}
		}
		out.Replicas = append(out.Replicas, j)
	}
	// The replicas' own errors are in their rows.
	out.Notes = append(out.Notes, s.notes(false)...)
	return out
}
