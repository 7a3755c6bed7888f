package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// remoteCall calls the API of a running tend, with $TEND_API_TOKEN.
func remoteCall(ctx context.Context, method, base, path string) ([]byte, error) {
	return remoteCallBody(ctx, method, base, path, nil)
}

// remoteCallBody is remoteCall with a JSON body (none when body is nil).
// A call with a body may wait for the daemon's queue: it gets 45 s, one
// without 30 s.
func remoteCallBody(ctx context.Context, method, base, path string, body []byte) ([]byte, error) {
	timeout := 30 * time.Second
	var rd io.Reader
	if body != nil {
		timeout, rd = 45*time.Second, bytes.NewReader(body)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(base, "/")+path, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if tok := getenv("TEND_API_TOKEN"); tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach tend at %s: %w", base, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(out, &e)
		if e.Error == "" {
			e.Error = strings.TrimSpace(string(out))
		}
		return nil, fmt.Errorf("tend at %s answered %s: %s", base, resp.Status, e.Error)
	}
	return out, nil
}

func newSyncCmd() *cobra.Command {
	var remote string
	cmd := &cobra.Command{
		Use:   "sync",
		Short: "Ask a running tend (tend run) for a reconcile pass now",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, err := remoteCall(cmd.Context(), http.MethodPost, remote, "/api/v1/sync"); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Asked %s for a pass.\n", remote)
			return nil
		},
	}
	cmd.Flags().StringVar(&remote, "remote", "http://127.0.0.1:8440", "the address of tend run (its --listen); the token is $TEND_API_TOKEN")
	return cmd
}

// remoteStatus prints the status document of a running tend.
func remoteStatus(cmd *cobra.Command, remote, output string) error {
	body, err := remoteCall(cmd.Context(), http.MethodGet, remote, "/api/v1/status")
	if err != nil {
		return err
	}
	if output == "json" {
		_, err := cmd.OutOrStdout().Write(body)
		return err
	}
	var doc struct {
		Daemon struct {
			Ready        bool      `json:"ready"`
			Source       string    `json:"source"`
			Revision     string    `json:"revision"`
			Applied      string    `json:"applied_revision"`
			LastPass     time.Time `json:"last_pass"`
			LastResult   string    `json:"last_result"`
			Stalled      string    `json:"stalled"`
			FetchError   string    `json:"fetch_error"`
			PruneRefused string    `json:"prune_refused"`
			Drift        []string  `json:"drift"`
			Updates      []struct {
				Server   string    `json:"server"`
				Policy   string    `json:"policy"`
				Locked   string    `json:"locked"`
				To       string    `json:"to"`
				Bump     string    `json:"bump"`
				Allowed  string    `json:"allowed"`
				HeldBack string    `json:"held_back"`
				Error    string    `json:"error"`
				At       time.Time `json:"at"`
				Commit   bool      `json:"commit"`
				Branch   string    `json:"branch"`
				Pushed   string    `json:"pushed"`
				Failed   string    `json:"failed"`
			} `json:"updates"`
		} `json:"daemon"`
		Servers []struct {
			Server          string   `json:"server"`
			DesiredVersion  string   `json:"desired_version"`
			LiveVersions    []string `json:"live_versions"`
			DesiredReplicas int      `json:"desired_replicas"`
			Running         int      `json:"running"`
			Health          string   `json:"health"`
			Pending         string   `json:"pending"`
		} `json:"servers"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return fmt.Errorf("tend at %s sent a status this tend cannot read: %w", remote, err)
	}
	out := cmd.OutOrStdout()
	d := doc.Daemon
	rev := dash(d.Revision)
	switch {
	case d.Applied == "":
	case strings.HasPrefix(d.Applied, d.Revision):
		rev = d.Applied // the same files; the suffix names the inputs
	default:
		rev += " (the fleet was last planned from " + d.Applied + ")"
	}
	fmt.Fprintf(out, "source %s, revision %s, last pass %s: %s\n", d.Source, rev, ago(d.LastPass), d.LastResult)
	for _, note := range []struct{ k, v string }{{"stalled", d.Stalled}, {"source error", d.FetchError}, {"prune refused", d.PruneRefused}} {
		if note.v != "" {
			fmt.Fprintf(out, "%s: %s\n", note.k, note.v)
		}
	}
	for _, dr := range d.Drift {
		fmt.Fprintf(out, "drift: %s\n", dr)
	}
	for _, u := range d.Updates {
		line := fmt.Sprintf("update: %s %s, policy %s, checked %s: ", u.Server, dash(u.Locked), u.Policy, ago(u.At))
		switch {
		case u.Error != "":
			line += "cannot resolve: " + u.Error
		case u.To != "" && u.To != u.Locked && u.Pushed != "":
			line += fmt.Sprintf("%s (%s) committed %s to %s", u.To, u.Bump, short12(u.Pushed), u.Branch)
		case u.To != "" && u.To != u.Locked:
			line += fmt.Sprintf("%s (%s) available", u.To, u.Bump)
		default:
			line += "up to date"
		}
		if u.HeldBack != "" {
			line += "; " + u.HeldBack
		}
		if u.Failed != "" {
			line += "; the run failed: " + u.Failed
		}
		fmt.Fprintln(out, line)
	}
	for _, s := range doc.Servers {
		fmt.Fprintf(out, "%-20s %-10s %-12s %d/%d %-9s %s\n", s.Server, dash(s.DesiredVersion), dash(strings.Join(s.LiveVersions, ",")), s.Running, s.DesiredReplicas, s.Health, s.Pending)
	}
	return nil
}

func short12(commit string) string {
	if len(commit) > 12 {
		return commit[:12]
	}
	return commit
}
