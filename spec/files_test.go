package spec_test

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/tendhq/tend/spec"
)

const oneServer = `
provider "process" "local" {}

server "api" {
  version = "1.0.0"
  command = ["./api"]
  port    = 8000
}
`

// loadWithin loads dir and fails the test when the load has not finished
// within a few seconds (it goes on in the background).
func loadWithin(t *testing.T, dir string, opts spec.Options) (*spec.Config, hcl.Diagnostics) {
	t.Helper()
	type result struct {
		cfg   *spec.Config
		diags hcl.Diagnostics
	}
	done := make(chan result, 1)
	go func() {
		cfg, _, diags := spec.Load(dir, opts)
		done <- result{cfg, diags}
	}()
	select {
	case r := <-done:
		return r.cfg, r.diags
	case <-time.After(10 * time.Second):
		t.Fatalf("loading %s did not finish", dir)
		return nil, nil
	}
}

func warningAbout(diags hcl.Diagnostics, name, what string) bool {
	for _, d := range diags {
		if d.Severity == hcl.DiagWarning && strings.Contains(d.Detail, name) && strings.Contains(d.Detail, what) {
			return true
		}
	}
	return false
}

// TestOnlyRegularFilesAreRead: an entry named *.hcl that is not a regular
// file is not read, and a warning names it: a FIFO made validate block
// forever, a directory named sub.hcl went unmentioned.
func TestOnlyRegularFilesAreRead(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(oneServer), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "pipe.hcl"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "sub.hcl"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("main.hcl", filepath.Join(dir, "link.hcl")); err != nil {
		t.Fatal(err)
	}
	cfg, diags := loadWithin(t, dir, spec.Options{TendVersion: "0.1.0"})
	if diags.HasErrors() {
		t.Fatalf("errors: %s", diags.Error())
	}
	if len(cfg.Servers) != 1 {
		t.Errorf("%d servers, want 1 (the symbolic link is not read a second time)", len(cfg.Servers))
	}
	for name, what := range map[string]string{"pipe.hcl": "named pipe", "sub.hcl": "directory", "link.hcl": "symbolic link"} {
		if !warningAbout(diags, name, what) {
			t.Errorf("no warning that %s (a %s) was not read: %v", name, what, diags)
		}
	}
	names, err := spec.FindFiles(dir)
	if err != nil || strings.Join(names, ",") != "main.hcl" {
		t.Errorf("FindFiles = %v, %v; want the regular file alone", names, err)
	}
}

// TestFunctionsReadRegularFilesOnly: file() of a FIFO is an error, not a
// read that never ends.
func TestFunctionsReadRegularFilesOnly(t *testing.T) {
	dir := t.TempDir()
	src := strings.Replace(oneServer, `command = ["./api"]`, `command = ["./api", file("pipe.txt")]`, 1)
	if err := os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "pipe.txt"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, diags := loadWithin(t, dir, spec.Options{TendVersion: "0.1.0"})
	if !diags.HasErrors() || !strings.Contains(diags.Error(), "not a regular file") {
		t.Errorf("want an error that pipe.txt is not a regular file: %v", diags)
	}
}

// TestEnvironmentFileMustBeRegular: environments/NAME.hcl as a FIFO is an
// error, not a read that never ends.
func TestEnvironmentFileMustBeRegular(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(oneServer), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, spec.EnvironmentsDir), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, spec.EnvironmentsDir, "prod.hcl"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, diags := loadWithin(t, dir, spec.Options{Env: "prod", TendVersion: "0.1.0"})
	if !diags.HasErrors() || !strings.Contains(diags.Error(), "named pipe") {
		t.Errorf("want an error that the values file is a named pipe: %v", diags)
	}
}
