package main

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/spf13/cobra"
	"github.com/tendhq/tend/spec"
)

func newFmtCmd() *cobra.Command {
	var check, noColor bool
	cmd := &cobra.Command{
		Use:   "fmt [DIR|FILE]...",
		Short: "Rewrite HCL files into canonical layout",
		Long: `fmt rewrites every *.hcl file under each DIR (default: the current directory),
environment files included, into canonical layout, and lists the files it
changed. A file with a syntax error is reported and left as it is.

With --check nothing is written: the files that would change are listed.

Exit status: 0 all formatted, 1 errors, 3 (with --check) files need formatting.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				args = []string{"."}
			}
			paths, err := hclFiles(args)
			if err != nil {
				return err
			}
			parser := hclparse.NewParser()
			var diags hcl.Diagnostics
			changed := 0
			for _, p := range paths {
				src, err := os.ReadFile(p)
				if err != nil {
					return err
				}
				// Parse through the parser too, so diagnostics get snippets.
				if _, d := parser.ParseHCL(src, p); d.HasErrors() {
					diags = append(diags, d...)
					continue
				}
				out, d := spec.Format(src, p)
				diags = append(diags, d...) // errors, or a warning for a file left as it is
				if d.HasErrors() {
					continue
				}
				if bytes.Equal(src, out) {
					continue
				}
				changed++
				fmt.Fprintln(cmd.OutOrStdout(), p)
				if check {
					continue
				}
				if err := writeFileKeepMode(p, out); err != nil {
					return err
				}
			}
			if len(diags) > 0 {
				printDiags(cmd.ErrOrStderr(), parser.Files(), diags, noColor)
				if diags.HasErrors() {
					return exitError{1}
				}
			}
			if check && changed > 0 {
				return exitError{3}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&check, "check", false, "change nothing; list the files that are not formatted and exit 3 if any")
	cmd.Flags().BoolVar(&noColor, "no-color", false, "never color the output")
	return cmd
}

// hclFiles expands directories into their *.hcl files, skipping hidden folders.
func hclFiles(args []string) ([]string, error) {
	var out []string
	for _, a := range args {
		st, err := os.Stat(a)
		if err != nil {
			return nil, err
		}
		if !st.IsDir() {
			out = append(out, a)
			continue
		}
		err = filepath.WalkDir(a, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && p != a && strings.HasPrefix(d.Name(), ".") {
				return filepath.SkipDir
			}
			if !d.IsDir() && strings.HasSuffix(p, ".hcl") && !strings.HasPrefix(d.Name(), ".") {
				out = append(out, p)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	sort.Strings(out)
	return out, nil
}

// writeFileKeepMode replaces a file's content atomically, keeping its mode.
func writeFileKeepMode(p string, data []byte) error {
	st, err := os.Stat(p)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), ".tend-fmt-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), st.Mode().Perm()); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), p)
}
