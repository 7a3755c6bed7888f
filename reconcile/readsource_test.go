package reconcile

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/tendhq/tend/spec"
)

// TestLoadSourceSaysWhatItSkipped: entries named *.hcl that are not
// regular files are not read, and each is named in a warning (plan and
// apply skipped them without a word).
func TestLoadSourceSaysWhatItSkipped(t *testing.T) {
	dir := t.TempDir()
	src := "provider \"process\" \"local\" {}\nserver \"api\" {\n  version = \"1.0.0\"\n  command = [\"./api\"]\n  port = 8000\n}\n"
	if err := os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(src), 0o644); err != nil {
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
	if err := os.Symlink("main.hcl", filepath.Join(dir, "notes.txt")); err != nil {
		t.Fatal(err)
	}
	s, _, diags := LoadSource(dir, spec.Options{TendVersion: "0.1.0"})
	if diags.HasErrors() {
		t.Fatalf("errors: %s", diags.Error())
	}
	if len(s.Config.Servers) != 1 {
		t.Errorf("%d servers, want 1", len(s.Config.Servers))
	}
	var warned []string
	for _, d := range diags {
		if d.Severity == hcl.DiagWarning {
			warned = append(warned, d.Detail)
		}
	}
	got := strings.Join(warned, "\n")
	for _, want := range []string{"pipe.hcl is a named pipe", "sub.hcl is a directory", "link.hcl is a symbolic link"} {
		if !strings.Contains(got, want) {
			t.Errorf("no warning %q in:\n%s", want, got)
		}
	}
	if strings.Contains(got, "notes.txt") {
		t.Errorf("a warning about a file that is not configuration:\n%s", got)
	}
}
