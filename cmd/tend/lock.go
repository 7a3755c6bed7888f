package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/spf13/cobra"
	"github.com/tendhq/tend/reconcile/versions"
	"github.com/tendhq/tend/spec"
)

func newLockCmd() *cobra.Command {
	var lf loadFlags
	var dir string
	var upgrade, check bool
	cmd := &cobra.Command{
		Use:   "lock [-upgrade [SERVER...]] [-check]",
		Short: "Resolve version constraints to releases and record them in tend.lock.hcl",
		Long: `lock resolves the version constraint of every server (version = "~> 1.4")
against its release source (the release block, or the image's repository, or
the build path its command names), to the newest release that the
constraint and every requires pin of the other servers allow, and writes
tend.lock.hcl beside the repository's HCL: per server the constraint, the
version, its digest and the source. Plans and applies read the versions
from the lock file, with no network.

A server already locked keeps its version while its constraint, its source
and the pins on it still allow it. -upgrade resolves every server again
(or only the SERVERs named) to the newest release allowed.

-check writes nothing: it reports a lock that is missing or stale (as
validate does), and asks each source whether the locked release still has
the locked digest (a tag pushed again, a build replaced, a release gone).

Exit status: 0 success (with -check: the lock holds), 1 errors.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 && !upgrade {
				return fmt.Errorf("lock takes SERVER names only with -upgrade (the repository is --dir DIR)")
			}
			if check && upgrade {
				return fmt.Errorf("-check writes nothing, -upgrade writes the lock file: give one of them")
			}
			if check {
				return lockCheck(cmd, &lf, dir)
			}
			return lockWrite(cmd, &lf, dir, upgrade, args)
		},
	}
	lf.register(cmd)
	cmd.Flags().StringVar(&dir, "dir", ".", "the state repository")
	cmd.Flags().BoolVar(&upgrade, "upgrade", false, "resolve again to the newest releases allowed: every server, or the SERVERs named")
	cmd.Flags().BoolVar(&check, "check", false, "check the lock file against the constraints and the sources; write nothing")
	return cmd
}

// loadForLock loads the repository with its constraints unresolved.
func loadForLock(cmd *cobra.Command, lf *loadFlags, dir string, unlocked bool) (*spec.Config, *spec.Loader, error) {
	opts, err := lf.options(false)
	if err != nil {
		return nil, nil, err
	}
	opts.Unlocked = unlocked
	l := spec.NewLoader(opts)
	cfg, diags := l.LoadDir(dir)
	printDiags(cmd.ErrOrStderr(), l.Files(), diags, lf.noColor)
	if diags.HasErrors() {
		errs, _ := countDiags(diags)
		return nil, nil, fmt.Errorf("the desired state has %d %s", errs, plural(errs, "error", "errors"))
	}
	return cfg, l, nil
}

func lockWrite(cmd *cobra.Command, lf *loadFlags, dir string, upgrade bool, only []string) error {
	cfg, _, err := loadForLock(cmd, lf, dir, true)
	if err != nil {
		return err
	}
	path := filepath.Join(dir, spec.LockFileName)
	var old *spec.Lock
	if src, err := os.ReadFile(path); err == nil {
		lk, f, diags := spec.ParseLock(src, path)
		if diags.HasErrors() {
			printDiags(cmd.ErrOrStderr(), map[string]*hcl.File{path: f}, diags, lf.noColor)
			return fmt.Errorf("%s has errors: fix it, or delete it and run tend lock to write it afresh", path)
		}
		old = lk
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	req := versions.LockRequest{Config: cfg, Old: old, Upgrade: map[string]bool{}, All: upgrade && len(only) == 0}
	for _, n := range only {
		s, ok := cfg.Servers[n]
		if !ok || s.Constraint == nil {
			return fmt.Errorf("-upgrade %s: no server %q whose version is a constraint", n, n)
		}
		req.Upgrade[n] = true
	}
	res := &versions.Resolver{Keychain: versions.ConfigKeychain(cfg)}
	lk, changes, diags := versions.Lock(cmd.Context(), res, req)
	if diags.HasErrors() {
		printDiags(cmd.ErrOrStderr(), loaderFiles(diags), diags, lf.noColor)
		errs, _ := countDiags(diags)
		return fmt.Errorf("%d %s could not be resolved; %s was not written", errs, plural(errs, "server", "servers"), spec.LockFileName)
	}
	out := cmd.OutOrStdout()
	data := lk.Bytes()
	if prev, err := os.ReadFile(path); err == nil && string(prev) == string(data) {
		fmt.Fprintf(out, "%s is up to date: %d %s locked.\n", spec.LockFileName, len(lk.Servers), plural(len(lk.Servers), "server", "servers"))
		return nil
	}
	if err := writeFileAtomic(path, data); err != nil {
		return err
	}
	for _, c := range changes {
		from := c.From
		if from == "" {
			from = "(new)"
		}
		line := fmt.Sprintf("  %s: %s -> %s (%s)", c.Server, from, c.To, c.Digest)
		if c.HeldBack != "" {
			line += "; " + c.HeldBack
		}
		fmt.Fprintln(out, line)
	}
	fmt.Fprintf(out, "Wrote %s: %d %s locked, %d changed.\n", path, len(lk.Servers), plural(len(lk.Servers), "server", "servers"), len(changes))
	return nil
}

// loaderFiles parses again the files that diagnostics point into, for
// their snippets.
func loaderFiles(diags hcl.Diagnostics) map[string]*hcl.File {
	files := map[string]*hcl.File{}
	for _, d := range diags {
		if d.Subject == nil {
			continue
		}
		if _, ok := files[d.Subject.Filename]; ok {
			continue
		}
		if src, err := os.ReadFile(d.Subject.Filename); err == nil {
			f, _ := hclsyntax.ParseConfig(src, d.Subject.Filename, hcl.InitialPos)
			files[d.Subject.Filename] = f
		}
	}
	return files
}

func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tend.lock.*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func lockCheck(cmd *cobra.Command, lf *loadFlags, dir string) error {
	cfg, l, err := loadForLock(cmd, lf, dir, false)
	if err != nil {
		return err
	}
	lk := l.Lock()
	if lk == nil {
		fmt.Fprintln(cmd.OutOrStdout(), "No server's version is a constraint, and there is no lock file: nothing to check.")
		return nil
	}
	moved, errs := versions.Check(cmd.Context(), &versions.Resolver{Keychain: versions.ConfigKeychain(cfg)}, cfg, lk)
	for _, err := range errs {
		fmt.Fprintf(cmd.ErrOrStderr(), "Error: cannot check: %v\n", err)
	}
	sort.Slice(moved, func(i, j int) bool { return moved[i].Server < moved[j].Server })
	for _, m := range moved {
		ls := lk.Servers[m.Server]
		if m.Now == "" {
			fmt.Fprintf(cmd.ErrOrStderr(), "Error: %s: the locked release %s (%s) is no longer listed by %s: run tend lock -upgrade %s\n", m.Server, m.Tag, ls.VersionRange, ls.Source, m.Server)
			continue
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "Error: %s: the release %s moved: %s now gives %s, and the lock file (%s) records %s: review the new build, then run tend lock -upgrade %s\n",
			m.Server, m.Tag, ls.Source, m.Now, ls.VersionRange, m.Locked, m.Server)
	}
	if len(moved) > 0 || len(errs) > 0 {
		return exitError{1}
	}
	fmt.Fprintf(cmd.OutOrStdout(), "The lock holds: %d %s, each at its locked digest.\n", len(lk.Servers), plural(len(lk.Servers), "server", "servers"))
	return nil
}

func newOutdatedCmd() *cobra.Command {
	var ef engineFlags
	var output string
	cmd := &cobra.Command{
		Use:   "outdated [DIR]",
		Short: "List servers with newer releases than they run or have locked",
		Long: `outdated lists, for each server whose version is a constraint, the version it
runs (its last verified apply, from the state store), the locked one, the
newest the constraint and the pins allow, the newest release at all (a new
major says so), and the semver step from the locked version to each.

Exit status: 0 nothing outdated, 1 error, 2 something is outdated (a newer
release is allowed or exists, or a server does not run its locked version).`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "text" && output != "json" {
				return fmt.Errorf("-o %q: the output format is text or json", output)
			}
			cfg, l, err := loadForLock(cmd, &ef.loadFlags, dirArg(args), false)
			if err != nil {
				return err
			}
			running, err := runningVersions(&ef, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			rows := versions.ListOutdated(cmd.Context(), &versions.Resolver{Keychain: versions.ConfigKeychain(cfg)}, cfg, l.Lock(), running)
			if output == "json" {
				if err := writeJSON(cmd.OutOrStdout(), rows); err != nil {
					return err
				}
			} else if err := printOutdated(cmd.OutOrStdout(), rows); err != nil {
				return err
			}
			for _, r := range rows {
				if r.Error != "" {
					return exitError{1}
				}
			}
			for _, r := range rows {
				if r.IsOutdated {
					return exitError{2}
				}
			}
			return nil
		},
	}
	ef.register(cmd)
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	return cmd
}

// runningVersions reads, from the state store, the version of each
// server's last verified apply (none for a deleted server).
func runningVersions(ef *engineFlags, stderr io.Writer) (map[string]string, error) {
	e, closeFn, err := ef.newEngine(nil, stderr)
	if err != nil {
		return nil, err
	}
	defer closeFn()
	latest, err := e.Store.LatestAll()
	if err != nil {
		return nil, err
	}
	verified, err := e.Store.LastVerifiedAll()
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for n, r := range verified {
		if l := latest[n]; l == nil || l.Outcome != "deleted" {
			out[n] = r.Version
		}
	}
	return out, nil
}

func printOutdated(w io.Writer, rows []versions.Outdated) error {
	if len(rows) == 0 {
		fmt.Fprintln(w, "No server's version is a constraint.")
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVER\tCONSTRAINT\tRUNNING\tLOCKED\tALLOWED\tLATEST\tNOTE")
	for _, r := range rows {
		var notes []string
		if r.AllowedBump != "" && r.AllowedBump != "none" {
			notes = append(notes, r.AllowedBump+" allowed")
		}
		if r.HeldBy != "" {
			notes = append(notes, "held back by the pin of "+r.HeldBy)
		}
		if r.NewMajor {
			notes = append(notes, "new major "+r.Latest+" (outside the constraint)")
		} else if r.LatestBump != "" && r.LatestBump != "none" && r.LatestBump != r.AllowedBump {
			notes = append(notes, r.LatestBump+" released")
		}
		if r.RunningBump != "" && r.RunningBump != "none" {
			notes = append(notes, "runs "+r.Running+", not the locked version")
		}
		if r.Error != "" {
			notes = append(notes, "error: "+r.Error)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Server, r.Constraint, dash(r.Running), dash(r.Locked), dash(r.Allowed), dash(r.Latest), dash(strings.Join(notes, "; ")))
	}
	return tw.Flush()
}
