package spec_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tendhq/tend/spec"
)

// An encryption key or S3 secret key given as secret("NAME") that is not
// set is reported as not set, not as a key in plain text.
func TestBackupKeysUnsetSecretIsNotPlainText(t *testing.T) {
	dir := t.TempDir()
	src := `server "a" {
  version = "1.0.0"
  command = ["./bin/server"]
  volume "data" {
    path = "/data"
  }
  backup {
    schedule       = "0 3 * * *"
    paths          = ["/data"]
    destination    = "s3://bucket/x"
    encryption_key = secret("k")
    s3 {
      access_key = "a"
      secret_key = secret("s")
    }
  }
}
`
	if err := os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, diags := spec.Load(dir, spec.Options{Strict: true, Environ: func(string) (string, bool) { return "", false }})
	notSet := 0
	for _, d := range diags {
		if strings.Contains(d.Summary, "plain text") {
			t.Errorf("an unset secret is reported as %q at %s", d.Summary, d.Subject)
		}
		if strings.Contains(d.Detail, "is not set") {
			notSet++
		}
	}
	if notSet != 2 {
		t.Errorf("want the two unset secrets reported, got:\n%s", diags.Error())
	}
}
