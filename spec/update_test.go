package spec_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/tendhq/tend/spec"
)

// TestUpdateOf: a server's update block overrides the tend block's
// attribute by attribute; a server with an exact version has none.
func TestUpdateOf(t *testing.T) {
	t.Parallel()
	cfg, _, diags, _ := loadCase(t, filepath.Join(fixtures, "valid", "update-settings"))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	u := cfg.UpdateOf("api")
	if u == nil {
		t.Fatal("no update settings in effect for api")
	}
	if u.Schedule != "0 4 * * *" || u.Policy != spec.PolicyPatch || !u.Commit || u.Branch != "tend/updates" ||
		u.AuthorName != "tend bot" || u.AuthorEmail != "tend@example.com" || u.SigningKey != nil {
		t.Errorf("UpdateOf(api) = %+v", u)
	}
	if cfg.UpdateOf("missing") != nil {
		t.Error("UpdateOf of an undeclared server")
	}
}

// armoredKey is a new OpenPGP private key, armored, with no passphrase.
func armoredKey(t *testing.T) string {
	t.Helper()
	e, err := openpgp.NewEntity("tend bot", "", "tend@example.com", nil)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w, err := armor.Encode(&buf, openpgp.PrivateKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.SerializePrivate(w, nil); err != nil {
		t.Fatal(err)
	}
	w.Close()
	return buf.String()
}

// TestUpdateSigningKey: a signing key from secret() decodes, and no
// printed form of the configuration shows it; a public key is refused.
func TestUpdateSigningKey(t *testing.T) {
	t.Parallel()
	key := armoredKey(t)
	dir := t.TempDir()
	write := func(name, text string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("main.hcl", `
tend {
  update {
    schedule    = "@daily"
    commit      = true
    signing_key = secret("update_key")
  }
}
server "api" {
  version = "~> 1.4"
  command = ["/opt/builds/api-${version}"]
}
`)
	write(spec.LockFileName, `server "api" {
  constraint = "~> 1.4"
  version    = "1.4.2"
  digest     = "sha256:0c88b20598df0fef4ab15c9a8d06e4ef895525eb547e38cae82c436f8fbf2bea"
  source     = "path:/opt/builds/api-{version}"
}
`)
	load := func(secret string) (*spec.Config, string) {
		environ := func(k string) (string, bool) {
			if k == "TEND_SECRET_UPDATE_KEY" {
				return secret, true
			}
			return "", false
		}
		cfg, files, diags := spec.Load(dir, spec.Options{Environ: environ})
		return cfg, renderDiags(t, files, diags)
	}
	cfg, text := load(key)
	if text != "" {
		t.Fatalf("diagnostics: %s", text)
	}
	u := cfg.UpdateOf("api")
	if u == nil || u.SigningKey == nil || !u.SigningKey.IsSensitive() || u.SigningKey.Reveal() != key {
		t.Fatalf("signing key not decoded: %+v", u)
	}
	out, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	body := strings.Split(key, "\n")[3]
	if bytes.Contains(out, []byte(body)) || !bytes.Contains(out, []byte(`"signing_key":"(sensitive)"`)) {
		t.Errorf("the JSON form shows the key, or not as (sensitive): %s", out)
	}

	e, _ := openpgp.ReadArmoredKeyRing(strings.NewReader(key))
	var pub bytes.Buffer
	w, _ := armor.Encode(&pub, openpgp.PublicKeyType, nil)
	_ = e[0].Serialize(w)
	w.Close()
	_, text = load(pub.String())
	if !strings.Contains(text, "Invalid signing key") || !strings.Contains(text, "is a public key") || strings.Contains(text, strings.Split(pub.String(), "\n")[3]) {
		t.Errorf("a public key: %s", text)
	}
}
