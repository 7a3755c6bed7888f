package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/tendhq/tend/spec"
)

// loadFlags are the flags every command that reads a repository shares.
type loadFlags struct {
	env        string
	vars       []string
	secretsDir string
	noColor    bool
}

func (f *loadFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.env, "env", "", "environment whose values file (environments/NAME.hcl) sets variables (default $TEND_ENV)")
	cmd.Flags().StringArrayVar(&f.vars, "var", nil, "set a variable: --var NAME=VALUE (repeatable)")
	cmd.Flags().StringVar(&f.secretsDir, "secrets-dir", "", "directory holding one file per secret (default $TEND_SECRETS_DIR)")
	cmd.Flags().BoolVar(&f.noColor, "no-color", false, "never color the output")
}

func (f *loadFlags) options(strict bool) (spec.Options, error) {
	opts := spec.Options{Env: f.env, TendVersion: version, Strict: strict, Vars: map[string]string{}}
	if opts.Env == "" {
		opts.Env = getenv("TEND_ENV")
	}
	dir := f.secretsDir
	if dir == "" {
		dir = getenv("TEND_SECRETS_DIR")
	}
	opts.Secrets = spec.EnvSecrets{Dir: dir}
	for _, kv := range f.vars {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return opts, fmt.Errorf("--var %q: write --var NAME=VALUE", kv)
		}
		opts.Vars[k] = v
	}
	return opts, nil
}

func newValidateCmd() *cobra.Command {
	var lf loadFlags
	var output string
	cmd := &cobra.Command{
		Use:   "validate [DIR]",
		Short: "Check a state repository without touching the fleet",
		Long: `validate reads every *.hcl file under DIR (default: the current directory),
and reports every problem at once, each with its file, line and column.
A secret that cannot be resolved is a warning here (plan and apply make it an error).

Exit status: 0 valid, 1 errors.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := "."
			if len(args) == 1 {
				dir = args[0]
			}
			if output != "text" && output != "json" {
				return fmt.Errorf("-o %q: the output format is text or json", output)
			}
			opts, err := lf.options(false)
			if err != nil {
				return err
			}
			cfg, files, diags := spec.Load(dir, opts)
			errs, warns := countDiags(diags)
			out := cmd.OutOrStdout()
			if output == "json" {
				res := map[string]any{
					"valid":         errs == 0,
					"error_count":   errs,
					"warning_count": warns,
					"diagnostics":   toJSONDiags(files, diags),
				}
				if cfg != nil && errs == 0 {
					res["servers"] = len(cfg.Servers)
				}
				if err := writeJSON(out, res); err != nil {
					return err
				}
			} else {
				printDiags(cmd.ErrOrStderr(), files, diags, lf.noColor)
				if errs == 0 {
					fmt.Fprintf(out, "Success! The configuration is valid: %d %s, %d %s.\n",
						len(cfg.Servers), plural(len(cfg.Servers), "server", "servers"),
						len(cfg.Providers), plural(len(cfg.Providers), "provider", "providers"))
				} else {
					fmt.Fprintf(cmd.ErrOrStderr(), "%d %s, %d %s.\n", errs, plural(errs, "error", "errors"), warns, plural(warns, "warning", "warnings"))
				}
			}
			if errs > 0 {
				return exitError{1}
			}
			return nil
		},
	}
	lf.register(cmd)
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	return cmd
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
