package spec_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/tendhq/tend/spec"
	"github.com/tendhq/tend/spec/diagtext"
)

var update = flag.Bool("update", false, "rewrite golden files")

// fixtures is where the language fixtures are. Diagnostics in golden files
// name files relative to it ("invalid/CASE/main.hcl").
const fixtures = "../testdata/spec"

// caseOptions is testcase.json: how a fixture is loaded. The environment is
// always a fake one, so the machine's TEND_VAR_ and TEND_SECRET_ variables
// never reach a fixture.
type caseOptions struct {
	Env         string            `json:"env"`
	Vars        map[string]string `json:"vars"`
	Environ     map[string]string `json:"environ"`
	Strict      bool              `json:"strict"`
	TendVersion string            `json:"tend_version"`
	// NoSubject lists summaries of errors that have no source range by
	// nature (a missing file, a flag).
	NoSubject []string `json:"no_subject"`
}

func loadCase(t *testing.T, dir string) (*spec.Config, map[string]*hcl.File, hcl.Diagnostics, caseOptions) {
	t.Helper()
	var co caseOptions
	if b, err := os.ReadFile(filepath.Join(dir, "testcase.json")); err == nil {
		if err := json.Unmarshal(b, &co); err != nil {
			t.Fatalf("testcase.json: %v", err)
		}
	}
	environ := func(k string) (string, bool) { v, ok := co.Environ[k]; return v, ok }
	tv := co.TendVersion
	if tv == "" {
		tv = "0.1.0"
	}
	cfg, files, diags := spec.Load(dir, spec.Options{
		Env: co.Env, Vars: co.Vars, Environ: environ, Strict: co.Strict, TendVersion: tv,
	})
	return cfg, files, diags, co
}

func renderDiags(t *testing.T, files map[string]*hcl.File, diags hcl.Diagnostics) string {
	t.Helper()
	rel := func(name string) string { return strings.TrimPrefix(name, fixtures+"/") }
	relFiles := make(map[string]*hcl.File, len(files))
	for name, f := range files {
		relFiles[rel(name)] = f
	}
	relRange := func(r *hcl.Range) *hcl.Range {
		if r == nil {
			return nil
		}
		c := *r
		c.Filename = rel(c.Filename)
		return &c
	}
	relDiags := make(hcl.Diagnostics, len(diags))
	for i, d := range diags {
		c := *d
		c.Subject, c.Context = relRange(d.Subject), relRange(d.Context)
		c.Detail = strings.ReplaceAll(d.Detail, fixtures+"/", "")
		relDiags[i] = &c
	}
	diags = relDiags
	// As the CLI prints them.
	w := diagtext.Writer{Files: relFiles, Width: 78}
	return w.String(diags)
}

func checkGolden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("missing golden file (run go test ./spec -update): %v", err)
	}
	if string(want) != got {
		t.Errorf("%s differs (run go test ./spec -update to accept):\n--- want\n%s\n--- got\n%s", path, want, got)
	}
}

func caseDirs(t *testing.T, kind string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(fixtures, kind))
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for _, e := range entries {
		if e.IsDir() {
			dirs = append(dirs, e.Name())
		}
	}
	return dirs
}

// TestInvalid loads every fixture under testdata/spec/invalid and compares
// its diagnostics with diagnostics.golden, exactly.
func TestInvalid(t *testing.T) {
	names := caseDirs(t, "invalid")
	if len(names) < 40 {
		t.Errorf("only %d invalid fixtures; the language keeps at least 40", len(names))
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(fixtures, "invalid", name)
			_, files, diags, co := loadCase(t, dir)
			if !diags.HasErrors() {
				t.Fatalf("an invalid fixture loaded without errors: %s", renderDiags(t, files, diags))
			}
			for _, d := range diags {
				if d.Severity == hcl.DiagError && d.Subject == nil && !containsStr(co.NoSubject, d.Summary) {
					t.Errorf("error without a source range: %s: %s", d.Summary, d.Detail)
				}
			}
			checkGolden(t, filepath.Join(dir, "diagnostics.golden"), renderDiags(t, files, diags))
		})
	}
}

// TestValid loads every fixture under testdata/spec/valid, requires no
// errors, and compares the decoded configuration with decoded.golden.json.
func TestValid(t *testing.T) {
	for _, name := range caseDirs(t, "valid") {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(fixtures, "valid", name)
			cfg, files, diags, _ := loadCase(t, dir)
			if diags.HasErrors() {
				t.Fatalf("valid fixture has errors:\n%s", renderDiags(t, files, diags))
			}
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetIndent("", "  ")
			if err := enc.Encode(cfg); err != nil {
				t.Fatal(err)
			}
			warnings := renderDiags(t, files, diags)
			got := buf.String()
			if warnings != "" {
				got += "\n# warnings\n" + warnings
			}
			checkGolden(t, filepath.Join(dir, "decoded.golden.json"), got)
		})
	}
}

func containsStr(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}
