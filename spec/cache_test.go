package spec_test

import (
	"fmt"
	"maps"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/Masterminds/semver/v3"
	"github.com/hashicorp/hcl/v2"
	"github.com/tendhq/tend/internal/fleetgen"
	"github.com/tendhq/tend/spec"
	"github.com/tendhq/tend/spec/diagtext"
)

// loadFresh loads files with a loader of its own, no cache: what a
// cached load must give.
func loadFresh(opts spec.Options, files map[string][]byte) (*spec.Config, string) {
	l := spec.NewLoader(opts)
	cfg, diags := l.LoadFiles("repo", files)
	return cfg, render(l.Files(), diags)
}

// render prints diagnostics as the CLI does, snippets included, all of them.
func render(files map[string]*hcl.File, diags hcl.Diagnostics) string {
	w := diagtext.Writer{Files: files, Width: 100, Max: -1}
	return w.String(diags)
}

// sameLoad loads files with the cached loader and with a fresh one, and
// fails unless the two give equal configurations (every field, ranges
// included) and print the same diagnostics.
func sameLoad(t *testing.T, l *spec.Loader, files map[string][]byte, opts spec.Options) *spec.Config {
	t.Helper()
	cfg, diags := l.LoadFiles("repo", files)
	got := render(l.Files(), diags)
	want, wantText := loadFresh(opts, files)
	if got != wantText {
		t.Fatalf("diagnostics of the cached load differ:\n--- fresh\n%s\n--- cached\n%s", wantText, got)
	}
	if (cfg == nil) != (want == nil) {
		t.Fatalf("cached load gave %v, fresh load %v", cfg, want)
	}
	if cfg != nil && !reflect.DeepEqual(cfg, want) {
		for name, s := range want.Servers {
			if !reflect.DeepEqual(cfg.Servers[name], s) {
				t.Fatalf("server %q of the cached load differs:\n%#v\nfresh:\n%#v", name, cfg.Servers[name], s)
			}
		}
		t.Fatalf("the cached load's configuration differs from a fresh load's")
	}
	return cfg
}

func testOptions(environ map[string]string) spec.Options {
	return spec.Options{
		Environ:     func(k string) (string, bool) { v, ok := environ[k]; return v, ok },
		TendVersion: "0.1.0",
		Strict:      true,
	}
}

// fleet is a generated repository of 200 servers: tend.hcl (variables,
// locals, a provider) and four files of 50 servers.
func fleet() map[string][]byte { return fleetgen.Files(200) }

func edit(t *testing.T, files map[string][]byte, name, old, new string) {
	t.Helper()
	s := string(files[name])
	if !strings.Contains(s, old) {
		t.Fatalf("%s has no %q", name, old)
	}
	files[name] = []byte(strings.Replace(s, old, new, 1))
}

func wantStats(t *testing.T, l *spec.Loader, parsed, reused int) {
	t.Helper()
	if st := l.Stats(); st.Parsed != parsed || st.Reused != reused {
		t.Errorf("load parsed %d files and reused %d, want %d and %d", st.Parsed, st.Reused, parsed, reused)
	}
}

// TestCacheChangedFileOnly: a change to one file of servers parses that
// file (and the file of variables and providers, which is always read)
// and takes the others from the cache; the change is seen.
func TestCacheChangedFileOnly(t *testing.T) {
	opts := testOptions(map[string]string{"TEND_SECRET_API_TOKEN": "t0ken"})
	files := fleet()
	l := spec.NewLoader(opts).WithCache(spec.NewCache())
	sameLoad(t, l, files, opts)
	wantStats(t, l, 5, 0)
	sameLoad(t, l, files, opts)
	wantStats(t, l, 1, 4)

	edit(t, files, "servers/group-0002.hcl", `version  = "1.0.2"`, `version  = "2.0.0"`)
	cfg := sameLoad(t, l, files, opts)
	wantStats(t, l, 2, 3)
	if v := cfg.Servers["svc-00100"].Version; v != "2.0.0" {
		t.Errorf("svc-00100 is at %q after the change, want 2.0.0", v)
	}
	// A pin on the changed server, from a file that was not parsed again,
	// is checked against the new version (the pins span files).
	if _, diags := l.LoadFiles("repo", files); !strings.Contains(diags.Error(), "Dependency pin not satisfied") {
		t.Errorf("the pins on svc-00100 (>= 1.0, < 2.0) were not checked against 2.0.0: %v", diags)
	}
}

// TestCacheGlobalsInvalidate: a change of a variable, a local or the
// providers makes every file of servers decode again.
func TestCacheGlobalsInvalidate(t *testing.T) {
	opts := testOptions(map[string]string{"TEND_SECRET_API_TOKEN": "t0ken"})
	files := fleet()
	l := spec.NewLoader(opts).WithCache(spec.NewCache())
	sameLoad(t, l, files, opts)

	edit(t, files, "tend.hcl", `default = "production"`, `default = "staging"`)
	cfg := sameLoad(t, l, files, opts)
	wantStats(t, l, 5, 0)
	if v := cfg.Servers["svc-00199"].Env["MCP_ENV"].String(); v != "staging" {
		t.Errorf("MCP_ENV of a server of the last file is %q, want staging", v)
	}
	sameLoad(t, l, files, opts)
	wantStats(t, l, 1, 4)

	edit(t, files, "tend.hcl", `team = "platform"`, `team = "core"`)
	cfg = sameLoad(t, l, files, opts)
	wantStats(t, l, 5, 0)
	if v := cfg.Servers["svc-00000"].Labels["team"]; v != "core" {
		t.Errorf("the team label is %q, want core", v)
	}

	// A second provider: servers that name theirs still decode the same,
	// but the providers are part of what they are evaluated with.
	files["providers.hcl"] = []byte("provider \"docker\" \"remote\" {\n  host = \"tcp://10.0.0.1:2375\"\n}\n")
	sameLoad(t, l, files, opts)
	wantStats(t, l, 6, 0)
}

// TestCacheVarsAcrossLoaders: two loaders sharing one cache with different
// --var values never take each other's servers.
func TestCacheVarsAcrossLoaders(t *testing.T) {
	files := fleet()
	c := spec.NewCache()
	a := testOptions(map[string]string{"TEND_SECRET_API_TOKEN": "t0ken"})
	b := a
	b.Vars = map[string]string{"environment": "canary"}
	la := spec.NewLoader(a).WithCache(c)
	lb := spec.NewLoader(b).WithCache(c)
	sameLoad(t, la, files, a)
	cfg := sameLoad(t, lb, files, b)
	wantStats(t, lb, 5, 0)
	if v := cfg.Servers["svc-00001"].Env["MCP_ENV"].String(); v != "canary" {
		t.Errorf("MCP_ENV with --var environment=canary is %q", v)
	}
	cfg = sameLoad(t, la, files, a)
	wantStats(t, la, 5, 0)
	if v := cfg.Servers["svc-00001"].Env["MCP_ENV"].String(); v != "production" {
		t.Errorf("MCP_ENV without --var is %q", v)
	}

	// Loaders of one cache at the same time (for the race detector).
	var wg sync.WaitGroup
	for _, o := range []spec.Options{a, b, a, b} {
		wg.Go(func() {
			if _, diags := spec.NewLoader(o).WithCache(c).LoadFiles("repo", files); diags.HasErrors() {
				t.Error(diags.Error())
			}
		})
	}
	wg.Wait()
}

// TestCacheDeletedFile: the servers of a file that is gone are gone, and a
// server that moves to another file is declared once.
func TestCacheDeletedFile(t *testing.T) {
	opts := testOptions(map[string]string{"TEND_SECRET_API_TOKEN": "t0ken"})
	files := fleet()
	l := spec.NewLoader(opts).WithCache(spec.NewCache())
	sameLoad(t, l, files, opts)

	moved := files["servers/group-0003.hcl"]
	delete(files, "servers/group-0003.hcl")
	cfg := sameLoad(t, l, files, opts)
	wantStats(t, l, 1, 3)
	if len(cfg.Servers) != 150 || cfg.Servers["svc-00150"] != nil {
		t.Errorf("after deleting a file of 50 servers: %d servers, svc-00150 = %v", len(cfg.Servers), cfg.Servers["svc-00150"])
	}
	files["servers/moved.hcl"] = moved
	cfg = sameLoad(t, l, files, opts)
	wantStats(t, l, 2, 3)
	if s := cfg.Servers["svc-00150"]; s == nil || !strings.HasSuffix(s.DeclRange.Filename, "moved.hcl") {
		t.Errorf("svc-00150 should be declared in servers/moved.hcl: %v", s)
	}
}

// TestCacheDiagnosticPositions: diagnostics after a cached load point at
// the right file, line and column, with the right snippets, also when they
// name a server that came from the cache: a duplicate name, a taken port,
// a pin.
func TestCacheDiagnosticPositions(t *testing.T) {
	opts := testOptions(map[string]string{"TEND_SECRET_API_TOKEN": "t0ken"})
	files := fleet()
	l := spec.NewLoader(opts).WithCache(spec.NewCache())
	sameLoad(t, l, files, opts)

	// A file sorted before the cached ones declares a server that a cached
	// file declares too: the error is at the cached file's block.
	files["servers/a-dup.hcl"] = []byte(`server "svc-00120" {
  provider = provider.process.local
  version  = "1.0.0"
  command  = ["./x"]
  port     = 10004
}
`)
	sameLoad(t, l, files, opts)
	wantStats(t, l, 2, 4)
	_, diags := l.LoadFiles("repo", files)
	var dup, port bool
	for _, d := range diags {
		switch d.Summary {
		case `Duplicate server "svc-00120"`:
			dup = d.Subject.Filename == "repo/servers/group-0002.hcl" && d.Subject.Start.Line > 1
		case "Port already claimed on this host":
			port = d.Subject.Filename == "repo/servers/a-dup.hcl" && d.Subject.Start.Line == 5 && d.Subject.Start.Column == 14
		}
	}
	if !dup || !port {
		t.Errorf("want a duplicate at servers/group-0002.hcl and a taken port at servers/a-dup.hcl:5,14; got\n%s", render(l.Files(), diags))
	}
	if l.Files()["repo/servers/group-0002.hcl"] == nil {
		t.Errorf("the cached file that a diagnostic points into is not among the files for the snippets")
	}

	// Fixed again: the cached entries still hold.
	delete(files, "servers/a-dup.hcl")
	sameLoad(t, l, files, opts)
	wantStats(t, l, 1, 4)
}

// TestCacheReadsOutside: a file's servers are decoded again when what
// their functions read changed: a secret, an environment variable, a file
// of the repository, a resolved version.
func TestCacheReadsOutside(t *testing.T) {
	environ := map[string]string{"TEND_SECRET_API_TOKEN": "t0ken", "REGION": "eu"}
	versions := map[string]string{"a": "1.2.0"}
	opts := testOptions(environ)
	opts.ResolveVersion = func(server string, c *semver.Constraints) (string, error) {
		if v, ok := versions[server]; ok {
			return v, nil
		}
		return "", fmt.Errorf("no releases")
	}
	files := map[string][]byte{
		"main.hcl": []byte(`provider "process" "local" {}
`),
		"a.hcl": []byte(`server "a" {
  version = "~> 1.2"
  command = ["./bin/a-${version}"]
  env     = { REGION = env("REGION"), TOKEN = secret("api_token") }
  config_file "app.yaml" {
    content = file("conf/app.yaml")
  }
}
`),
		"b.hcl": []byte(`server "b" {
  version = "1.0.0"
  command = ["./b"]
}
`),
		"conf/app.yaml": []byte("workers: 2\n"),
	}
	l := spec.NewLoader(opts).WithCache(spec.NewCache())
	sameLoad(t, l, files, opts)
	sameLoad(t, l, files, opts)
	wantStats(t, l, 1, 2)

	for _, step := range []struct {
		what   string
		change func()
		check  func(*spec.Server) bool
	}{
		{"secret", func() { environ["TEND_SECRET_API_TOKEN"] = "rotated" }, func(s *spec.Server) bool { return s.Env["TOKEN"].Reveal() == "rotated" }},
		{"env", func() { environ["REGION"] = "us" }, func(s *spec.Server) bool { return s.Env["REGION"].Reveal() == "us" }},
		{"file", func() { files["conf/app.yaml"] = []byte("workers: 4\n") }, func(s *spec.Server) bool { return s.ConfigFiles[0].Content.Reveal() == "workers: 4\n" }},
		{"version", func() { versions["a"] = "1.3.0" }, func(s *spec.Server) bool { return s.Version == "1.3.0" }},
	} {
		step.change()
		cfg := sameLoad(t, l, files, opts)
		wantStats(t, l, 2, 1)
		if !step.check(cfg.Servers["a"]) {
			t.Errorf("after a change of the %s, server a is %#v", step.what, cfg.Servers["a"])
		}
		sameLoad(t, l, files, opts)
		wantStats(t, l, 1, 2)
	}
}

// TestCacheUnresolvedSecretWarnings: in a load that is not strict, a
// secret that is not set is warned about at every call, also in files
// taken from the cache.
func TestCacheUnresolvedSecretWarnings(t *testing.T) {
	opts := testOptions(nil)
	opts.Strict = false
	files := fleet()
	l := spec.NewLoader(opts).WithCache(spec.NewCache())
	sameLoad(t, l, files, opts)
	sameLoad(t, l, files, opts)
	wantStats(t, l, 1, 4)
	_, diags := l.LoadFiles("repo", files)
	if n := strings.Count(render(nil, diags), "Secret not available"); n != 200 {
		t.Errorf("%d warnings about the unset secret, want one per server (200)", n)
	}
}

// TestCacheEditSequence applies a run of edits of every kind and checks
// every cached load against a fresh one.
func TestCacheEditSequence(t *testing.T) {
	opts := testOptions(map[string]string{"TEND_SECRET_API_TOKEN": "t0ken"})
	files := fleet()
	orig := maps.Clone(files)
	l := spec.NewLoader(opts).WithCache(spec.NewCache())
	steps := []func(){
		func() { edit(t, files, "servers/group-0000.hcl", `replicas = 2`, `replicas = 3`) },
		func() { edit(t, files, "servers/group-0001.hcl", `port     = 10204`, `port     = 10000`) }, // a port taken
		func() { edit(t, files, "servers/group-0001.hcl", `port     = 10000`, `port     = 10204`) },
		func() { edit(t, files, "servers/group-0002.hcl", `server "svc-00100"`, `server "svc-00000"`) }, // a duplicate
		func() { edit(t, files, "servers/group-0003.hcl", `command  = [`, `command  = `) },              // a syntax error
		func() { maps.Copy(files, orig) },
		func() { edit(t, files, "tend.hcl", `locals {`, "locals {\n  extra = 1") },
		func() { files["servers/zz.hcl"] = []byte("variable \"late\" {\n  default = 1\n}\n") }, // a variable in a late file
		func() { files["servers/zz.hcl"] = []byte("/* unseen */ locals {\n  late = 2\n}\n") },  // one the scan misses
		func() { delete(files, "servers/group-0000.hcl") },
		func() { maps.Copy(files, orig) },
	}
	sameLoad(t, l, files, opts)
	for i, step := range steps {
		step()
		t.Run(fmt.Sprint(i), func(t *testing.T) { sameLoad(t, l, files, opts) })
	}
}

// TestLoadScanMissed: a file that declares a variable where the scan for
// such blocks does not see it (after a comment on the same line) is still
// read before the servers that use it.
func TestLoadScanMissed(t *testing.T) {
	files := map[string][]byte{
		"a.hcl": []byte(`server "a" {
  version = "1.0.0"
  command = ["./a", var.flag]
}
`),
		"b.hcl": []byte(`/* the flag */ variable "flag" {
  default = "--fast"
}
`),
	}
	opts := testOptions(nil)
	l := spec.NewLoader(opts)
	cfg, diags := l.LoadFiles("repo", files)
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	if got := spec.Values(cfg.Servers["a"].Command); strings.Join(got, " ") != "./a --fast" {
		t.Errorf("command = %v", got)
	}
	if st := l.Stats(); st.Parsed != 4 {
		t.Errorf("parsed %d times, want 4 (both files, then both again once b.hcl showed a variable)", st.Parsed)
	}
}

// TestLoadKeepsFilesOfDiagnostics: after a load the loader holds the
// parsed files that its diagnostics point into, and no other.
func TestLoadKeepsFilesOfDiagnostics(t *testing.T) {
	files := fleet()
	edit(t, files, "servers/group-0001.hcl", `replicas = 2`, `replicas = "two"`)
	l := spec.NewLoader(testOptions(map[string]string{"TEND_SECRET_API_TOKEN": "t0ken"}))
	_, diags := l.LoadFiles("repo", files)
	if !diags.HasErrors() {
		t.Fatal("replicas = \"two\" loaded")
	}
	var names []string
	for n := range l.Files() {
		names = append(names, n)
	}
	if len(names) != 1 || names[0] != "repo/servers/group-0001.hcl" {
		t.Errorf("files kept: %v, want only repo/servers/group-0001.hcl", names)
	}
	if out := render(l.Files(), diags); !strings.Contains(out, `replicas = "two"`) {
		t.Errorf("no snippet:\n%s", out)
	}
}
