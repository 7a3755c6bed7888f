package main

import (
	"context"
	"fmt"
	"github.com/hashicorp/hcl/v2"
	"github.com/tendhq/tend/spec"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/sirupsen/logrus"
	"github.com/spf13/cobra"
	"github.com/tendhq/tend/providers"
	"github.com/tendhq/tend/providers/docker"
	"github.com/tendhq/tend/providers/kubernetes"
	"github.com/tendhq/tend/providers/null"
	"github.com/tendhq/tend/providers/process"
	"github.com/tendhq/tend/providers/systemd"
	"github.com/tendhq/tend/reconcile"
	"github.com/tendhq/tend/reconcile/state"
)

// engineFlags are the flags of every command that touches the fleet.
type engineFlags struct {
	loadFlags
	git         gitFlags
	stateDir    string
	store       string
	managedBy   string
	hostLabels  []string
	parallelism int
	targets     []string
	noWindows   bool
	allowPrune  bool
	logFormat   string
	logLevel    string
	// writes marks a command that records in the state store: opening it
	// runs the store's quick check first (every page: about 0.5 s for a
	// store of 100,000 revisions, a few ms for a small one), which the
	// commands that only read skip.
	writes bool
}

func (f *engineFlags) register(cmd *cobra.Command) {
	f.loadFlags.register(cmd)
	f.git.register(cmd)
	cmd.Flags().StringVar(&f.stateDir, "state-dir", "", "where tend keeps its state, logs and processes (default $TEND_STATE_DIR, else ~/.local/state/tend)")
	registerStoreFlag(cmd, &f.store)
	cmd.Flags().StringVar(&f.managedBy, "managed-by", "", "this tend's identity on the objects it creates (default $TEND_MANAGED_BY, else \"tend\")")
	cmd.Flags().StringArrayVar(&f.hostLabels, "host-label", nil, "a label of this host for server selectors: --host-label role=edge (repeatable)")
	cmd.Flags().IntVar(&f.parallelism, "parallelism", 0, "how many servers change at once (default: tend { parallelism }, else 10)")
	cmd.Flags().StringVar(&f.logFormat, "log-format", "text", "log format on stderr: text or json")
	cmd.Flags().StringVar(&f.logLevel, "log-level", "error", "log level on stderr: debug, info, warning, error")
}

// registerTarget adds -target, for plan and apply.
func (f *engineFlags) registerTarget(cmd *cobra.Command) {
	cmd.Flags().StringArrayVar(&f.targets, "target", nil, "plan only this server and the servers it depends on; nothing else is changed or pruned (repeatable)")
	cmd.Flags().BoolVar(&f.noWindows, "ignore-windows", false, "plan and apply changes even while window blocks keep them back (an emergency)")
	cmd.Flags().BoolVar(&f.allowPrune, "allow-prune", false, "delete every server, or more than max_prune_percent of them, when the desired state says so (tend { prune = false } still keeps them)")
}

func (f *engineFlags) resolvedStateDir() (string, error) {
	dir := f.stateDir
	if dir == "" {
		dir = getenv("TEND_STATE_DIR")
	}
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("no --state-dir and no home directory: %w", err)
		}
		dir = filepath.Join(home, ".local", "state", "tend")
	}
	return filepath.Abs(dir)
}

// registerStoreFlag adds --store.
func registerStoreFlag(cmd *cobra.Command, store *string) {
	cmd.Flags().StringVar(store, "store", "", "the state store: a PostgreSQL URL, postgres://USER@HOST:PORT/DATABASE (default $TEND_STORE, else the SQLite file STATE_DIR/state.db); give the password by PGPASSWORD or ~/.pgpass rather than in the URL")
}

// storePath is the store to open: --store, else $TEND_STORE, else the
// SQLite file state.db in the state directory.
func (f *engineFlags) storePath() (string, error) {
	store := f.store
	if store == "" {
		store = getenv("TEND_STORE")
	}
	if store != "" {
		if !state.IsPostgresURL(store) {
			return "", fmt.Errorf("--store / $TEND_STORE: want a PostgreSQL URL (postgres://USER@HOST:PORT/DATABASE); without either, the store is STATE_DIR/state.db")
		}
		return store, nil
	}
	dir, err := f.resolvedStateDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "state.db"), nil
}

// storeWhere names the store for a message: "the state directory DIR", or
// "the store URL" (without its password).
func (f *engineFlags) storeWhere() string {
	p, err := f.storePath()
	if err == nil && state.IsPostgresURL(p) {
		return "the store " + state.RedactURL(p)
	}
	dir, _ := f.resolvedStateDir()
	return "the state directory " + dir
}

// newEngine opens the state store and wires the providers.
func (f *engineFlags) newEngine(progress io.Writer, stderr io.Writer) (*reconcile.Engine, func(), error) {
	dir, err := f.resolvedStateDir()
	if err != nil {
		return nil, nil, err
	}
	storePath, err := f.storePath()
	if err != nil {
		return nil, nil, err
	}
	st, err := state.Open(storePath)
	if err != nil {
		return nil, nil, err
	}
	if f.writes {
		if err := st.QuickCheck(context.Background()); err != nil {
			st.Close()
			return nil, nil, err
		}
	}
	log := logrus.New()
	log.SetOutput(stderr)
	if f.logFormat == "json" {
		log.SetFormatter(&logrus.JSONFormatter{})
	} else if f.logFormat != "text" {
		st.Close()
		return nil, nil, fmt.Errorf("--log-format %q: text or json", f.logFormat)
	}
	lvl, err := logrus.ParseLevel(f.logLevel)
	if err != nil {
		st.Close()
		return nil, nil, fmt.Errorf("--log-level %q: %v", f.logLevel, err)
	}
	log.SetLevel(lvl)
	managedBy := f.managedBy
	if managedBy == "" {
		managedBy = getenv("TEND_MANAGED_BY")
	}
	if managedBy == "" {
		managedBy = providers.DefaultManagedBy
	}
	hostname, _ := os.Hostname()
	host := reconcile.Host{Name: hostname, Labels: map[string]string{}}
	for _, kv := range f.hostLabels {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			st.Close()
			return nil, nil, fmt.Errorf("--host-label %q: write --host-label KEY=VALUE", kv)
		}
		host.Labels[k] = v
	}
	opts, err := f.options(true)
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	reg := providers.NewRegistry()
	process.Register(reg)
	docker.Register(reg)
	systemd.Register(reg)
	kubernetes.Register(reg)
	null.Register(reg)
	e := &reconcile.Engine{
		Store: st, Registry: reg, ManagedBy: managedBy, Host: host, Version: version,
		ProvEnv:     providers.Env{StateDir: dir, ManagedBy: managedBy},
		LoadOptions: opts, Parallelism: f.parallelism, Log: log, Progress: progress, Targets: f.targets, IgnoreWindows: f.noWindows, AllowPrune: f.allowPrune,
	}
	return e, func() { st.Close() }, nil
}

// loadSource reads and decodes the repository, printing diagnostics.
// strict makes an unresolved secret an error (apply).
func (f *engineFlags) loadSource(cmd *cobra.Command, dir string, strict bool) (*reconcile.Source, error) {
	opts, err := f.options(strict)
	if err != nil {
		return nil, err
	}
	var src *reconcile.Source
	var loader *spec.Loader
	var diags hcl.Diagnostics
	if url, ok := repoURL(dir); ok {
		stateDir, err := f.resolvedStateDir()
		if err != nil {
			return nil, err
		}
		g, err := f.git.newGit(url, stateDir)
		if err != nil {
			return nil, err
		}
		snap, _, err := g.Fetch(cmd.Context())
		if err != nil {
			return nil, err
		}
		src, loader, diags = reconcile.NewSource(g.Remote()+"@"+gitRevision(snap), gitRevision(snap), snap.Files, opts)
	} else {
		src, loader, diags = reconcile.LoadSource(dir, opts)
	}
	files := map[string]*hcl.File{}
	if loader != nil {
		files = loader.Files()
	}
	printDiags(cmd.ErrOrStderr(), files, diags, f.noColor)
	if diags.HasErrors() {
		errs, _ := countDiags(diags)
		return nil, fmt.Errorf("the desired state has %d %s; nothing was changed", errs, plural(errs, "error", "errors"))
	}
	return src, nil
}
