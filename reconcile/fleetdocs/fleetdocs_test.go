package fleetdocs

import (
	"bytes"
	"encoding/json"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tendhq/tend/reconcile/contract"
	"github.com/tendhq/tend/spec"
)

var update = flag.Bool("update", false, "rewrite golden files")

// The secrets of testdata/fleet: no generated file may contain them.
const (
	secretToken = "tok-s3cr3t-notes-42"    // secret("notes_token")
	secretVar   = "var-key-0000-sensitive" // var.search_api_key, sensitive
)

func loadFleet(t *testing.T) *spec.Config {
	t.Helper()
	environ := map[string]string{"TEND_SECRET_NOTES_TOKEN": secretToken}
	cfg, _, diags := spec.Load("testdata/fleet", spec.Options{
		Environ: func(k string) (string, bool) { v, ok := environ[k]; return v, ok },
		Strict:  true,
	})
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	return cfg
}

// loadContracts reads testdata/contracts/NAME.json, the contract of server
// NAME (notes.json is the contract of mcp-notes 1.4.0, as Fetch records it).
func loadContracts(t *testing.T) map[string]*contract.Contract {
	t.Helper()
	paths, err := filepath.Glob("testdata/contracts/*.json")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*contract.Contract{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var c contract.Contract
		if err := json.Unmarshal(b, &c); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if err := c.Normalize(); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		out[strings.TrimSuffix(filepath.Base(p), ".json")] = &c
	}
	return out
}

func generate(t *testing.T) Files {
	t.Helper()
	files, err := Generate(loadFleet(t), loadContracts(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// TestGenerateGolden compares every generated file with testdata/golden.
func TestGenerateGolden(t *testing.T) {
	t.Parallel()
	files := generate(t)
	const dir = "testdata/golden"
	if *update {
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
		for _, p := range files.Paths() {
			full := filepath.Join(dir, filepath.FromSlash(p))
			if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(full, files[p], 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return
	}
	var golden []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		golden = append(golden, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(golden)
	if !slices.Equal(golden, files.Paths()) {
		t.Errorf("generated %v, golden files are %v (run with -update to accept)", files.Paths(), golden)
	}
	for _, p := range files.Paths() {
		want, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(p)))
		if err != nil {
			continue // reported above
		}
		if !bytes.Equal(files[p], want) {
			t.Errorf("%s differs from %s (run with -update to accept):\n%s", p, dir, files[p])
		}
	}
}

func TestGenerateShowsNoSecret(t *testing.T) {
	t.Parallel()
	cfg := loadFleet(t)
	// The secrets are really there, for the providers.
	if got := cfg.Servers["notes"].Env["NOTES_TOKEN"].Reveal(); got != secretToken {
		t.Fatalf("NOTES_TOKEN = %q: the fixture does not load its secret", got)
	}
	files := generate(t)
	for _, p := range files.Paths() {
		for _, secret := range []string{secretToken, secretVar} {
			if bytes.Contains(files[p], []byte(secret)) {
				t.Errorf("%s shows the secret %q", p, secret)
			}
		}
	}
	conf := string(files["CONFIGURATION.md"])
	for _, want := range []string{
		"| `NOTES_TOKEN` | (sensitive) |",
		"| `API_KEY` | (sensitive) |",
		"#### `credentials.json`\n\nMode 0600. The content is sensitive: it is not shown.",
		"`./bin/mcp-notes-1.4.0 --config config.yaml --token (sensitive)`",
		"header Authorization: (sensitive)",
		"`/app/search migrate --key (sensitive)`",
	} {
		if !strings.Contains(conf, want) {
			t.Errorf("CONFIGURATION.md lacks %q", want)
		}
	}
}

func TestGenerateIsDeterministic(t *testing.T) {
	t.Parallel()
	first := generate(t)
	for range 10 {
		again := generate(t)
		for _, p := range first.Paths() {
			if !bytes.Equal(first[p], again[p]) {
				t.Fatalf("%s differs between two runs", p)
			}
		}
		if len(again) != len(first) {
			t.Fatal("another set of files on another run")
		}
	}
}

func TestGenerateWithoutContracts(t *testing.T) {
	t.Parallel()
	files, err := Generate(loadFleet(t), nil, Options{Title: "Notes fleet"})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"notes", "search"} {
		if page := string(files["servers/"+name+".md"]); !strings.Contains(page, NoContract) {
			t.Errorf("servers/%s.md does not say that no contract was recorded:\n%s", name, page)
		}
	}
	if !strings.HasPrefix(string(files["README.md"]), "# Notes fleet\n") {
		t.Errorf("README.md does not start with the title:\n%s", files["README.md"])
	}
	var f struct {
		Servers []struct {
			Name     string          `json:"name"`
			Contract json.RawMessage `json:"contract"`
		} `json:"servers"`
	}
	if err := json.Unmarshal(files["fleet.json"], &f); err != nil {
		t.Fatal(err)
	}
	if len(f.Servers) != 2 || string(f.Servers[0].Contract) != "null" {
		t.Errorf("fleet.json servers = %+v, want two without contracts", f.Servers)
	}
}

// TestGenerateOlderContract: the page says when the contract was recorded
// from another version than the desired one.
func TestGenerateOlderContract(t *testing.T) {
	t.Parallel()
	contracts := loadContracts(t)
	contracts["notes"].Version = "1.3.0"
	contracts["ghost"] = &contract.Contract{Server: "ghost"} // not in the desired state: ignored
	files, err := Generate(loadFleet(t), contracts, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if page := string(files["servers/notes.md"]); !strings.Contains(page, "> The contract was recorded from version 1.3.0; the desired version is 1.4.0.") {
		t.Errorf("servers/notes.md does not say the contract is older:\n%s", page)
	}
	if _, ok := files["servers/ghost.md"]; ok {
		t.Error("a page for a contract of a server that is not in the desired state")
	}
}

func TestParams(t *testing.T) {
	t.Parallel()
	ps, err := params(json.RawMessage(`{"type":"object","required":["query"],"properties":{
		"query":{"type":"string","description":"what | to\nfind"},
		"order":{"type":"string","enum":["oldest","newest"],"default":"oldest"},
		"tags":{"type":["null","array"],"items":{"type":"string"}},
		"n":{"type":["integer","string"]},
		"any":{},
		"filter":{"type":"object","required":["tag"],"properties":{"tag":{"type":"string"},"after":{"type":"string"}}},
		"people":{"type":"array","items":{"type":"object","properties":{"name":{"type":"string"}}}}
	}}`))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range ps {
		got = append(got, strings.Join([]string{p.Path, p.Type, yesNo(p.Required), p.Description, p.Values}, " | "))
	}
	want := []string{
		"any | any | no |  | ",
		"filter | object | no |  | ",
		"filter.after | string | no |  | ",
		"filter.tag | string | yes |  | ",
		"n | integer or string | no |  | ",
		`order | string | no |  | one of "oldest", "newest"; default "oldest"`,
		"people | array of object | no |  | ",
		"people[].name | string | no |  | ",
		"query | string | yes | what | to\nfind | ",
		"tags | array of string (nullable) | no |  | ",
	}
	if !slices.Equal(got, want) {
		t.Errorf("params:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if got := cell("what | to\nfind <b>"); got != `what \| to find &lt;b&gt;` {
		t.Errorf("cell = %q", got)
	}
	if got := code("a`b"); got != "`` a`b ``" {
		t.Errorf("code = %q", got)
	}
	if got := fence("x ``` y", "json"); got != "````json\nx ``` y\n````" {
		t.Errorf("fence = %q", got)
	}
}

// mtimes returns the modification time of every file under dir.
func mtimes(t *testing.T, dir string) map[string]time.Time {
	t.Helper()
	out := map[string]time.Time{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		out[p] = info.ModTime()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// age sets the modification time of every file under dir an hour back, so
// that a rewrite shows.
func age(t *testing.T, dir string) {
	t.Helper()
	old := time.Now().Add(-time.Hour).Truncate(time.Second)
	for p := range mtimes(t, dir) {
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
}

func TestWrite(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "docs")
	files := generate(t)

	changed, err := Write(dir, files)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(changed, files.Paths()) {
		t.Errorf("first Write changed %v, want %v", changed, files.Paths())
	}
	for _, p := range files.Paths() {
		b, err := os.ReadFile(filepath.Join(dir, p))
		if err != nil || !bytes.Equal(b, files[p]) {
			t.Errorf("%s: written %q, %v", p, b, err)
		}
	}
	manifest, err := os.ReadFile(filepath.Join(dir, Manifest))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(string(manifest), "\nAPI.md\nCHANGELOG.md\nCONFIGURATION.md\nREADME.md\nTROUBLESHOOTING.md\nfleet.json\nservers/notes.md\nservers/search.md\n") {
		t.Errorf("manifest:\n%s", manifest)
	}

	// Files of someone else's, at the top and among the generated ones.
	mine := filepath.Join(dir, "notes.txt")
	custom := filepath.Join(dir, "servers", "custom.md")
	for _, p := range []string{mine, custom} {
		if err := os.WriteFile(p, []byte("mine\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// Regenerating changes nothing, not even modification times.
	age(t, dir)
	before := mtimes(t, dir)
	changed, err = Write(dir, generate(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(changed) != 0 {
		t.Errorf("second Write changed %v, want nothing", changed)
	}
	after := mtimes(t, dir)
	for p, m := range before {
		if !after[p].Equal(m) {
			t.Errorf("second Write touched %s", p)
		}
	}
	if len(after) != len(before) {
		t.Errorf("second Write left %d files, had %d", len(after), len(before))
	}

	// A server goes: its page is removed, the index changes, the files of
	// someone else's stay.
	cfg := loadFleet(t)
	delete(cfg.Servers, "search")
	delete(cfg.Windows, "nights")
	cfg.Servers["notes"].DependsOn = nil
	fewer, err := Generate(cfg, loadContracts(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	changed, err = Write(dir, fewer)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"API.md", "CHANGELOG.md", "CONFIGURATION.md", "README.md", "TROUBLESHOOTING.md", "fleet.json", "servers/search.md"}; !slices.Equal(changed, want) {
		t.Errorf("Write after removing a server changed %v, want %v", changed, want)
	}
	if _, err := os.Stat(filepath.Join(dir, "servers", "search.md")); !os.IsNotExist(err) {
		t.Errorf("the stale page is still there: %v", err)
	}
	for _, p := range []string{mine, custom} {
		if b, err := os.ReadFile(p); err != nil || string(b) != "mine\n" {
			t.Errorf("%s was touched: %q, %v", p, b, err)
		}
	}
	if m, _ := os.ReadFile(filepath.Join(dir, Manifest)); strings.Contains(string(m), "search.md") {
		t.Errorf("the manifest still lists the removed page:\n%s", m)
	}
}

func TestWriteRemovesEmptyFolders(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if _, err := Write(dir, Files{"README.md": []byte("a\n"), "servers/x.md": []byte("x\n")}); err != nil {
		t.Fatal(err)
	}
	changed, err := Write(dir, Files{"README.md": []byte("a\n")})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(changed, []string{"servers/x.md"}) {
		t.Errorf("changed = %v", changed)
	}
	if _, err := os.Stat(filepath.Join(dir, "servers")); !os.IsNotExist(err) {
		t.Errorf("the empty servers folder is still there: %v", err)
	}
}

func TestWriteRefusesForeignFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	readme := filepath.Join(dir, "README.md")
	if err := os.WriteFile(readme, []byte("my own README\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Write(dir, Files{"README.md": []byte("generated\n"), "fleet.json": []byte("{}\n")})
	if err == nil || !strings.Contains(err.Error(), "was not generated by tend docs") {
		t.Fatalf("Write over a file of someone else's: %v", err)
	}
	if b, _ := os.ReadFile(readme); string(b) != "my own README\n" {
		t.Errorf("README.md was overwritten: %q", b)
	}
	if _, err := os.Stat(filepath.Join(dir, "fleet.json")); !os.IsNotExist(err) {
		t.Error("Write wrote some files before it refused")
	}
	// A file with the very content is not in the way.
	if _, err := Write(dir, Files{"README.md": []byte("my own README\n")}); err != nil {
		t.Errorf("Write of the same content: %v", err)
	}
}

func TestWriteRefusesBadPaths(t *testing.T) {
	t.Parallel()
	for _, p := range []string{"", "../x.md", "/etc/passwd", "a/../../b", "a//b", ".tend-docs", `a\b`, "."} {
		if _, err := Write(t.TempDir(), Files{p: []byte("x")}); err == nil {
			t.Errorf("Write accepted the path %q", p)
		}
	}
	// An edited manifest cannot make Write delete outside the folder.
	root := t.TempDir()
	dir := filepath.Join(root, "docs")
	outside := filepath.Join(root, "precious.txt")
	if err := os.WriteFile(outside, []byte("keep\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, Manifest), []byte("../precious.txt\n/etc/hosts\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Write(dir, Files{"README.md": []byte("x\n")}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(outside); err != nil {
		t.Errorf("a file outside the folder was removed: %v", err)
	}
}
