package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/tendhq/tend/reconcile"
)

func newLogsCmd() *cobra.Command {
	var ef engineFlags
	var replica, tail int
	var follow bool
	var since string
	cmd := &cobra.Command{
		Use:   "logs SERVER [DIR]",
		Short: "Print the output of a server's replicas; -f follows it",
		Long: `logs prints what the replicas of SERVER (a server of the desired state in
DIR, default the current directory) wrote to their stdout and stderr, through
their provider: the files the process provider keeps, the container's logs
(docker), the unit's journal (systemd), the pod's log (kubernetes).

--tail N prints the last N lines of each replica (0: all that is kept), --since
leaves out what was written before a time (10m, 2h, or RFC 3339), --replica N
reads one replica, and -f keeps printing what they write until interrupted.
With several replicas, each one's lines come under a "==> replica N <=="
header, or, with -f, after "replica N | ". The server's sensitive values show
as (sensitive). The process provider keeps no time for each line, so it
refuses --since.`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			// An interrupt ends -f (and nothing else); caught from the
			// start, so that one sent early ends it the same way.
			ctx := cmd.Context()
			if ctx == nil {
				ctx = context.Background()
			}
			if follow {
				var stop context.CancelFunc
				ctx, stop = signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
				defer stop()
			}
			var sinceT time.Time
			if since != "" {
				t, err := parseSince(since, time.Now())
				if err != nil {
					return err
				}
				sinceT = t
			}
			if replica < -1 {
				return fmt.Errorf("--replica %d: a replica number is 0 or more", replica)
			}
			src, err := ef.loadSource(cmd, dirArg(args[1:]), false)
			if err != nil {
				return err
			}
			e, closeFn, err := ef.newEngine(nil, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			defer closeFn()
			return e.Logs(ctx, src.Config, reconcile.LogsRequest{
				Server: args[0], Replica: replica, Tail: tail, Since: sinceT, Follow: follow, Out: cmd.OutOrStdout(),
			})
		},
	}
	ef.register(cmd)
	cmd.Flags().IntVar(&replica, "replica", -1, "read only this replica (default: every replica)")
	cmd.Flags().IntVar(&tail, "tail", 100, "how many of the last lines of each replica to print (0: all)")
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing what the replicas write, until interrupted")
	cmd.Flags().StringVar(&since, "since", "", "leave out lines written before this: a duration back from now (10m, 2h) or an RFC 3339 time")
	return cmd
}

// parseSince reads --since: a duration back from now, or an RFC 3339 time.
func parseSince(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, fmt.Errorf("--since %q: give a duration back from now, such as 10m", s)
		}
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if strings.TrimSpace(s) == "" {
		return time.Time{}, fmt.Errorf("--since is empty")
	}
	return time.Time{}, fmt.Errorf("--since %q: a duration (10m, 2h) or an RFC 3339 time (2026-01-02T15:04:05Z)", s)
}
