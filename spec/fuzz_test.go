package spec_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/tendhq/tend/spec"
)

// FuzzLoad feeds arbitrary bytes to the loader and the formatter. Neither
// may panic, and every error the loader reports about the source must carry
// a source range, so that a person can find it.
//
// The seed corpus is every fixture under testdata/spec plus the examples;
// inputs the fuzzer found worth keeping live in testdata/fuzz/FuzzLoad.
func FuzzLoad(f *testing.F) {
	seeds, _ := filepath.Glob(fixtures + "/*/*/*.hcl")
	more, _ := filepath.Glob("../examples/*/*.hcl")
	servers, _ := filepath.Glob("../examples/*/servers/*.hcl")
	for _, p := range append(append(seeds, more...), servers...) {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	noEnv := func(string) (string, bool) { return "", false }
	f.Fuzz(func(t *testing.T, src []byte) {
		l := spec.NewLoader(spec.Options{Environ: noEnv, TendVersion: "0.1.0"})
		cfg, diags := l.LoadFiles("fuzz", map[string][]byte{
			"main.hcl":              src,
			"templates/config.tpl":  []byte("workers: ${workers}\n"),
			"environments/prod.hcl": []byte("x = 1\n"),
		})
		for _, d := range diags {
			if d.Severity == hcl.DiagError && d.Subject == nil {
				t.Errorf("error diagnostic without a source range: %q: %q", d.Summary, d.Detail)
			}
		}
		if !diags.HasErrors() && cfg == nil {
			t.Errorf("no errors but no configuration")
		}
		if cfg != nil {
			for name, s := range cfg.Servers {
				if s == nil || s.Name != name {
					t.Errorf("server map entry %q is %v", name, s)
				}
			}
		}
		if out, d := spec.Format(src, "main.hcl"); !d.HasErrors() {
			// Formatting is idempotent.
			again, _ := spec.Format(out, "main.hcl")
			if string(again) != string(out) {
				t.Errorf("fmt is not idempotent:\n%s\n---\n%s", out, again)
			}
		}
	})
}
