package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"
	"github.com/tendhq/tend/reconcile"
	"github.com/tendhq/tend/reconcile/api"
	"github.com/tendhq/tend/reconcile/dashboard"
	"github.com/tendhq/tend/reconcile/notify"
	"github.com/tendhq/tend/reconcile/source"
	"github.com/tendhq/tend/reconcile/state"
	"github.com/tendhq/tend/reconcile/update"
	"github.com/tendhq/tend/spec"
)

// gitFlags say where a git source is and how to reach it.
type gitFlags struct {
	ref        string
	path       string
	sshKey     string
	knownHosts string
	keyring    string
	timeout    time.Duration
}

func (g *gitFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&g.ref, "ref", "main", "what to check out of a git repository: a branch, tag:NAME, semver:RANGE or commit:HASH")
	cmd.Flags().StringVar(&g.path, "path", "", "the folder of the repository that holds the desired state")
	cmd.Flags().StringVar(&g.sshKey, "ssh-key", "", "SSH private key for ssh:// and git@ URLs (passphrase in $TEND_GIT_SSH_PASSPHRASE)")
	cmd.Flags().StringVar(&g.knownHosts, "known-hosts", "", "known_hosts file to check SSH host keys against (default ~/.ssh/known_hosts)")
	cmd.Flags().StringVar(&g.keyring, "verify-keyring", "", "armored OpenPGP public keys: apply only commits (or tags) signed by one of them")
	cmd.Flags().DurationVar(&g.timeout, "git-timeout", time.Minute, "bound for each git network call")
}

// isRepoURL tells a git URL from a directory.
func isRepoURL(s string) bool {
	if strings.Contains(s, "://") {
		return true
	}
	// scp-like: git@host:path
	if at := strings.Index(s, "@"); at > 0 {
		if colon := strings.Index(s[at:], ":"); colon > 0 {
			return true
		}
	}
	return false
}

// repoURL tells a git source from a directory of .hcl files: a URL, an
// scp-like address, or the path of a bare repository (HEAD, objects/ and
// refs/ and no work tree), which is read through git as file://PATH. A
// working copy stays a directory: tend reads its files as they are.
func repoURL(s string) (string, bool) {
	if isRepoURL(s) {
		return s, true
	}
	if !isBareRepo(s) {
		return s, false
	}
	abs, err := filepath.Abs(s)
	if err != nil {
		return s, false
	}
	p := filepath.ToSlash(abs)
	if !strings.HasPrefix(p, "/") {
		p = "/" + p // file:///C:/fleet.git
	}
	return "file://" + p, true
}

// isBareRepo reports whether dir is a bare git repository.
func isBareRepo(dir string) bool {
	if fi, err := os.Stat(filepath.Join(dir, "HEAD")); err != nil || !fi.Mode().IsRegular() {
		return false
	}
	for _, sub := range []string{"objects", "refs"} {
		if fi, err := os.Stat(filepath.Join(dir, sub)); err != nil || !fi.IsDir() {
			return false
		}
	}
	return true
}

// newGit builds the git source of url, caching under the state directory.
func (g *gitFlags) newGit(url, stateDir string) (*source.Git, error) {
	ref, err := source.ParseRef(g.ref)
	if err != nil {
		return nil, fmt.Errorf("--ref %q: %w", g.ref, err)
	}
	isSSH := strings.HasPrefix(url, "ssh://") || !strings.Contains(url, "://")
	kh, key := "", ""
	if isSSH {
		kh, key = g.knownHosts, g.sshKey
		if kh == "" {
			if home, err := os.UserHomeDir(); err == nil {
				kh = filepath.Join(home, ".ssh", "known_hosts")
			}
		}
	} else if g.sshKey != "" || g.knownHosts != "" {
		return nil, fmt.Errorf("--ssh-key and --known-hosts are for ssh:// and git@host:path remotes, not %s", url)
	}
	keyring := ""
	if g.keyring != "" {
		b, err := os.ReadFile(g.keyring)
		if err != nil {
			return nil, fmt.Errorf("--verify-keyring: %w", err)
		}
		keyring = string(b)
	}
	return source.NewGit(source.Options{
		URL: url, Ref: ref, Path: g.path, Timeout: g.timeout, Keyring: keyring,
		CacheDir: filepath.Join(stateDir, "git", cacheKey(url)),
		Auth: source.Auth{
			SSHKeyFile: key, SSHKeyPassphrase: getenv("TEND_GIT_SSH_PASSPHRASE"), KnownHostsFile: kh,
			Token: getenv("TEND_GIT_TOKEN"), Username: getenv("TEND_GIT_USERNAME"), Password: getenv("TEND_GIT_PASSWORD"),
		},
	})
}

func cacheKey(url string) string {
	var b strings.Builder
	for _, r := range url {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

// gitFetcher adapts a git source to the loop.
type gitFetcher struct {
	mu   sync.Mutex
	git  *source.Git
	desc string
}

func (f *gitFetcher) Fetch(ctx context.Context) (map[string][]byte, string, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	snap, changed, err := f.git.Fetch(ctx)
	if err != nil {
		return nil, "", false, err
	}
	return snap.Files, gitRevision(snap), changed, nil
}

// Peek asks the remote for the revision without using the files; the loop
// uses it to see whether a newer commit supersedes an apply in progress.
func (f *gitFetcher) Peek(ctx context.Context) (string, error) {
	_, rev, _, err := f.Fetch(ctx)
	return rev, err
}

func (f *gitFetcher) Describe() string { return f.desc }

// gitRevision names a git snapshot: the short commit.
func gitRevision(s *source.Snapshot) string {
	if len(s.Commit) > 12 {
		return s.Commit[:12]
	}
	return s.Commit
}

// The daemon's metrics take the loop's update runs.
var _ reconcile.UpdateMetrics = (*api.Metrics)(nil)

// loopNotifier sends loop events to the notify blocks of the newest
// desired state.
type loopNotifier struct {
	mu   sync.Mutex
	loop *reconcile.Loop
	rev  string
	n    *notify.Notifier
	host string
}

func (l *loopNotifier) Send(kind, server, version, revision, message string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	src := l.loop.LastGood()
	if src == nil {
		return
	}
	if l.n == nil || src.Revision != l.rev {
		if l.n != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_ = l.n.Close(ctx)
			cancel()
		}
		l.n = notify.New(src.Config.Notifies, notify.Options{Log: l.loop.Log})
		l.rev = src.Revision
	}
	l.n.Send(notify.Event{Kind: kind, Server: server, Version: version, Revision: revision, Message: message, Host: l.host, Time: time.Now().UTC()})
}

func (l *loopNotifier) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = l.n.Close(ctx)
	}
}

// backend is the daemon as the HTTP side sees it.
type backend struct {
	loop *reconcile.Loop
	eng  *reconcile.Engine
}

func (b *backend) Trigger(reason string) { b.loop.Trigger(reason) }
func (b *backend) Ready() bool           { return b.loop.Ready() }

func (b *backend) Status(ctx context.Context) (any, error) {
	out := map[string]any{"daemon": b.loop.Status()}
	if src := b.loop.LastGood(); src != nil {
		sts, err := b.eng.Status(ctx, src)
		if err != nil {
			return nil, err
		}
		out["servers"] = sts
	}
	return out, nil
}

func (b *backend) History(_ context.Context, server string, limit int) (any, error) {
	return b.eng.Store.History(server, limit)
}

func (b *backend) Backups(_ context.Context, server string, limit int) (any, error) {
	rows, err := b.eng.Store.Backups(server, limit)
	if rows == nil {
		rows = []state.Backup{}
	}
	return rows, err
}

func newRunCmd() *cobra.Command {
	ef := engineFlags{writes: true}
	var listen string
	var rateLimit int
	var bodyLimit string
	var poll time.Duration
	var allowPrune, noDashboard bool
	var scaleEvery, scaleReady, usageEvery, usageKeep time.Duration
	cmd := &cobra.Command{
		Use:   "run DIR | URL",
		Short: "Keep the fleet in the desired state: the GitOps daemon",
		Long: `run reconciles the fleet with the desired state in DIR, or in the git
repository at URL or at the path of a bare repository (--ref, --path),
whenever it changes: on a poll interval (tend { poll_interval }, default 30s),
on webhooks from GitHub, GitLab, Gitea or Forgejo, or any HMAC-signing sender,
on cron schedules (tend { schedule } and each server's drift_check), and on
POST /api/v1/sync.

Servers with update settings (an update block, in the server or in tend {})
are resolved on the update schedule to the newest releases their
constraints, pins and update policies allow; with commit = true tend run
commits the upgraded tend.lock.hcl to the branch (the one it watches by
default) and pushes it with the same credentials, so it is applied through
git like any other change. Without commit it only reports: the log, an
"update" notification, /metrics and the status.

A revision that fails verification is rolled back and held, never retried in
a loop; a revision that does not load stalls the daemon with its errors until
the repository changes; an unreachable repository keeps the last good
revision. Drift is healed when self_heal is on, else reported. A commit that
would delete every server, or more than max_prune_percent of them, is refused
unless --allow-prune.

Servers with a scaling block on the process, systemd and docker providers are
autoscaled: every --autoscale-interval tend samples their replicas' CPU,
memory and metric endpoints, decides the count as the Kubernetes HPA does,
and scales through the normal apply path (new replicas are verified before
they count). The kubernetes provider leaves scaling to its
HorizontalPodAutoscaler.

The HTTP side (--listen, loopback by default) serves /healthz, /readyz,
/metrics, /hooks/{github,gitlab,gitea,generic} and /api/v1/{status,history,sync},
and the fleet dashboard at / (--no-dashboard turns it off): every server's
versions, replicas, health, holds and waits, live, and per server its
history, checks, contract, backups, scaling and next plan. It is read-only
to anyone who reaches --listen; with TEND_API_TOKEN set, a person who signs
in with the token may sync, retry a held revision, roll back to a verified
revision and take a backup.
Secrets come from the environment: TEND_API_TOKEN, TEND_GITHUB_SECRET,
TEND_GITLAB_TOKEN, TEND_GITEA_SECRET, TEND_WEBHOOK_SECRET, TEND_GIT_TOKEN,
TEND_GIT_USERNAME/TEND_GIT_PASSWORD.

SIGTERM or SIGINT: servers being changed finish their step and are recorded,
no new change starts, then tend exits; a restarted tend resumes from the store.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if ef.logLevel == "error" && !cmd.Flags().Changed("log-level") {
				ef.logLevel = "info"
			}
			maxBody, err := spec.ParseBytes(bodyLimit)
			if err != nil || maxBody <= 0 {
				return fmt.Errorf("--webhook-body-limit %q: want a size such as 25MiB", bodyLimit)
			}
			e, closeFn, err := ef.newEngine(cmd.OutOrStdout(), cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			defer closeFn()
			stateDir, _ := ef.resolvedStateDir()
			e.Owner = "tend run"
			var fetcher reconcile.Fetcher
			trackedRef := ""
			updater := &update.Runner{LoadOptions: e.LoadOptions}
			if url, ok := repoURL(args[0]); ok {
				g, err := ef.git.newGit(url, stateDir)
				if err != nil {
					return err
				}
				desc := g.Remote() + "@" + ef.git.ref
				if ef.git.path != "" {
					desc += ":" + ef.git.path
				}
				fetcher = &gitFetcher{git: g, desc: desc}
				updater.Repo = g
				if r, err := source.ParseRef(ef.git.ref); err == nil && r.Kind == "branch" {
					trackedRef = "refs/heads/" + r.Name
					updater.Watched = r.Name
				}
			} else {
				fetcher = &reconcile.DirFetcher{Dir: args[0]}
			}
			updater.Describe = fetcher.Describe()
			reg := prometheus.NewRegistry()
			reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
			metrics := api.NewMetrics(reg)
			loop := &reconcile.Loop{Engine: e, Fetcher: fetcher, Metrics: metrics, Log: e.Log, Poll: poll, Updater: updater}
			e.AllowPrune = allowPrune
			if scaleEvery > 0 {
				loop.Autoscaler = &reconcile.Autoscaler{Engine: e, ReadyAfter: scaleReady}
				loop.ScaleInterval = scaleEvery
			}
			loop.UsageInterval, loop.UsageKeep = usageEvery, usageKeep
			host, _ := os.Hostname()
			notifier := &loopNotifier{loop: loop, host: host}
			defer notifier.close()
			loop.Notify = notifier
			var ui http.Handler
			if !noDashboard {
				ui = dashboard.New(&dashboard.LoopData{Loop: loop, Engine: e}, dashboard.Options{Token: getenv("TEND_API_TOKEN"), Log: e.Log})
			}
			handler := api.NewServer(api.Config{
				GitHubSecret: getenv("TEND_GITHUB_SECRET"), GitLabToken: getenv("TEND_GITLAB_TOKEN"),
				GiteaSecret: getenv("TEND_GITEA_SECRET"), GenericSecret: getenv("TEND_WEBHOOK_SECRET"),
				TrackedRef: trackedRef, APIToken: getenv("TEND_API_TOKEN"), Log: e.Log, RateLimit: rateLimit,
				BodyLimit: maxBody, Dashboard: ui,
			}, &backend{loop: loop, eng: e}, metrics)
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("--listen %s: %w", listen, err)
			}
			srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
			go func() { _ = srv.Serve(ln) }()
			e.Log.WithFields(map[string]any{"listen": ln.Addr().String(), "source": fetcher.Describe()}).Info("tend run started")
			fmt.Fprintf(cmd.ErrOrStderr(), "tend run: watching %s, listening on http://%s\n", fetcher.Describe(), ln.Addr())

			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, os.Interrupt)
			defer stop()
			err = loop.Run(ctx)
			shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = srv.Shutdown(shutdown)
			e.Log.Info("tend run stopped")
			return err
		},
	}
	ef.register(cmd)
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:8440", "address of the HTTP side (webhooks, health, metrics, API)")
	cmd.Flags().IntVar(&rateLimit, "rate-limit", 60, "webhook and API requests per minute per client address (negative: no limit)")
	cmd.Flags().StringVar(&bodyLimit, "webhook-body-limit", "25MiB", "largest webhook body accepted; larger ones get 413 (GitHub sends push payloads of up to 25 MB)")
	cmd.Flags().DurationVar(&poll, "poll", 0, "poll interval (default: tend { poll_interval })")
	cmd.Flags().BoolVar(&noDashboard, "no-dashboard", false, "do not serve the fleet dashboard at / (the JSON API stays)")
	cmd.Flags().BoolVar(&allowPrune, "allow-prune", false, "let a commit delete every server, or more than max_prune_percent of them")
	cmd.Flags().DurationVar(&scaleEvery, "autoscale-interval", reconcile.DefaultScaleInterval, "how often the autoscaler samples the replicas of servers with a scaling block (0: tend does not autoscale)")
	cmd.Flags().DurationVar(&usageEvery, "usage-interval", reconcile.DefaultUsageInterval, "how often tend samples what every running replica uses and records it per server, for tend capacity's average and peak (0: never)")
	cmd.Flags().DurationVar(&usageKeep, "usage-keep", reconcile.DefaultUsageKeep, "how long recorded usage samples are kept")
	cmd.Flags().DurationVar(&scaleReady, "autoscale-ready-after", reconcile.DefaultReadyAfter, "how long a new replica runs before the autoscaler counts its samples")
	return cmd
}
