package spec_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/tendhq/tend/spec"
)

// TestSecretsNeverPrinted loads a repository full of secrets and sensitive
// variables and checks that no printed or encoded form of the decoded
// configuration contains a secret value.
func TestSecretsNeverPrinted(t *testing.T) {
	t.Parallel()
	environ := map[string]string{"TEND_SECRET_API_TOKEN": "tok-123", "TEND_SECRET_DB_PASSWORD": "hunter2"}
	cfg, _, diags := spec.Load(fixtures+"/valid/sensitive-values", spec.Options{
		Environ: func(k string) (string, bool) { v, ok := environ[k]; return v, ok },
		Strict:  true,
	})
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	s := cfg.Servers["api"]
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	forms := map[string]string{
		"json": string(b),
		"%v":   fmt.Sprintf("%v", s),
		"%+v":  fmt.Sprintf("%+v", s),
		"%#v":  fmt.Sprintf("%#v", s),
		"%s":   fmt.Sprintf("%s", s.Env),
		"env":  fmt.Sprint(s.Env["DATABASE_URL"]),
	}
	for name, out := range forms {
		for _, secret := range []string{"tok-123", "hunter2", "not-a-real-key"} {
			if strings.Contains(out, secret) {
				t.Errorf("%s form shows the secret %q:\n%s", name, secret, out)
			}
		}
	}
	// The real values are still there for the provider.
	if got := s.Env["DATABASE_URL"].Reveal(); got != "postgres://app:hunter2@db:5432/app" {
		t.Errorf("DATABASE_URL = %q", got)
	}
	if !s.Env["API_KEY"].IsSensitive() || s.Env["PLAIN"].IsSensitive() {
		t.Errorf("sensitivity: API_KEY %v, PLAIN %v", s.Env["API_KEY"].IsSensitive(), s.Env["PLAIN"].IsSensitive())
	}
	for _, f := range s.ConfigFiles {
		if f.Path == "secrets.json" && f.Mode != 0o600 {
			t.Errorf("a config file holding a secret has mode %o, want 600", f.Mode)
		}
	}
}

// TestExamples validates every example repository in every environment it
// ships, with secrets unresolved (warnings only).
func TestExamples(t *testing.T) {
	root := "../examples"
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		dir := filepath.Join(root, e.Name())
		if names, _ := spec.FindFiles(dir); !e.IsDir() || len(names) == 0 {
			continue
		}
		envs := []string{""}
		if envFiles, _ := filepath.Glob(filepath.Join(dir, spec.EnvironmentsDir, "*.hcl")); len(envFiles) > 0 {
			envs = nil
			for _, f := range envFiles {
				envs = append(envs, strings.TrimSuffix(filepath.Base(f), ".hcl"))
			}
		}
		for _, env := range envs {
			n++
			t.Run(e.Name()+"/"+env, func(t *testing.T) {
				cfg, _, diags := spec.Load(dir, spec.Options{Env: env, TendVersion: "0.1.0", Environ: func(string) (string, bool) { return "", false }})
				for _, d := range diags {
					if d.Severity == hcl.DiagError {
						t.Errorf("%s", d.Error())
					}
				}
				if cfg != nil && len(cfg.Servers) == 0 {
					t.Errorf("example declares no server")
				}
			})
		}
	}
	if n < 3 {
		t.Errorf("found %d example repositories/environments, want quickstart and mcp-fleet (production, staging)", n)
	}
}

// TestNotesFleetEnvironments checks that the environments really differ.
func TestNotesFleetEnvironments(t *testing.T) {
	load := func(env string) *spec.Config {
		cfg, _, diags := spec.Load("../examples/mcp-fleet", spec.Options{Env: env, Environ: func(string) (string, bool) { return "", false }})
		if diags.HasErrors() {
			t.Fatal(diags.Error())
		}
		return cfg
	}
	prod, staging := load("production"), load("staging")
	if prod.Servers["search"].Replicas != 4 || staging.Servers["search"].Replicas != 2 {
		t.Errorf("search replicas: production %d, staging %d; want 4 and 2", prod.Servers["search"].Replicas, staging.Servers["search"].Replicas)
	}
	if got := staging.Servers["search"].Image; got != "registry.example.com/mcp/search:1.5.0" {
		t.Errorf("staging search image = %q", got)
	}
}
