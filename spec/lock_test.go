package spec_test

import (
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/tendhq/tend/spec"
)

const lockGolden = "../testdata/lock/tend.lock.hcl"

func sampleLock() *spec.Lock {
	return &spec.Lock{Servers: map[string]*spec.LockedServer{
		"search":  {Name: "search", Constraint: "~> 1.4", Version: "1.6.0", Digest: "sha256:" + strings.Repeat("ab", 32), Source: "registry:registry.example.com/mcp/search"},
		"gateway": {Name: "gateway", Constraint: ">= 2.0, < 3.0", Version: "2.3.1", Digest: "sha1:" + strings.Repeat("c", 40), Source: "git:https://git.example.com/mcp/gateway.git"},
		"notes":   {Name: "notes", Constraint: "~> 0.9.0", Version: "0.9.4", Digest: "sha256:" + strings.Repeat("0", 64), Source: "path:/opt/builds/mcp-notes-{version}"},
	}}
}

// TestLockFormat: the lock file's bytes are stable (sorted servers, fixed
// attribute order, aligned by hclwrite), and parse back to the same lock.
func TestLockFormat(t *testing.T) {
	got := sampleLock().Bytes()
	if *update {
		if err := os.WriteFile(lockGolden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(lockGolden)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Fatalf("%s differs (go test ./spec -run TestLockFormat -update):\n--- got\n%s\n--- want\n%s", lockGolden, got, want)
	}
	lk, _, diags := spec.ParseLock(got, "tend.lock.hcl")
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	for n, ls := range sampleLock().Servers {
		p := lk.Servers[n]
		if p == nil || p.Constraint != ls.Constraint || p.Version != ls.Version || p.Digest != ls.Digest || p.Source != ls.Source {
			t.Errorf("%s parsed back as %+v", n, p)
		}
	}
	if string(lk.Bytes()) != string(got) {
		t.Error("a lock parsed and written again changed")
	}
}

func TestLockParseErrors(t *testing.T) {
	ok := "constraint = \"~> 1.4\"\n  version = \"1.4.2\"\n  digest = \"sha256:" + strings.Repeat("a", 64) + "\"\n  source = \"git:https://x/y.git\"\n"
	for name, tc := range map[string]struct{ src, summary string }{
		"syntax":      {"server \"a\" {", "Unclosed configuration block"},
		"unknown":     {"module \"a\" {}", "Unsupported block type"},
		"missing":     {"server \"a\" {\n  version = \"1.4.2\"\n}", "Missing required argument"},
		"version":     {"server \"a\" {\n" + strings.Replace(ok, "\"1.4.2\"", "\"1.4\"", 1) + "}", "Invalid locked version"},
		"digest":      {"server \"a\" {\n" + strings.Replace(ok, "sha256:", "md5:", 1) + "}", "Invalid digest"},
		"source":      {"server \"a\" {\n" + strings.Replace(ok, "git:", "ftp:", 1) + "}", "Invalid release source"},
		"constraint":  {"server \"a\" {\n" + strings.Replace(ok, "~> 1.4", "~> one", 1) + "}", "Invalid locked constraint"},
		"expression":  {"server \"a\" {\n" + strings.Replace(ok, "\"1.4.2\"", "var.v", 1) + "}", "Invalid lock file value"},
		"duplicate":   {"server \"a\" {\n" + ok + "}\nserver \"a\" {\n" + ok + "}", "Duplicate server in the lock file"},
		"server name": {"server \"-a\" {\n" + ok + "}", "Invalid server name"},
	} {
		t.Run(name, func(t *testing.T) {
			_, _, diags := spec.ParseLock([]byte(tc.src), "tend.lock.hcl")
			if !diags.HasErrors() {
				t.Fatal("no error")
			}
			if diags[0].Summary != tc.summary || diags[0].Subject == nil {
				t.Fatalf("first diagnostic %q at %v, want %q with a position", diags[0].Summary, diags[0].Subject, tc.summary)
			}
		})
	}
}

// FuzzLockParse: the lock file parser never panics, and each error it
// reports has a position.
func FuzzLockParse(f *testing.F) {
	f.Add(sampleLock().Bytes())
	f.Add([]byte("server \"a\" {\n  constraint = 1\n}\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		lk, _, diags := spec.ParseLock(src, "tend.lock.hcl")
		for _, d := range diags {
			if d.Severity == hcl.DiagError && d.Subject == nil {
				t.Errorf("error without a position: %q: %q", d.Summary, d.Detail)
			}
		}
		if !diags.HasErrors() {
			again, _, d2 := spec.ParseLock(lk.Bytes(), "tend.lock.hcl")
			if d2.HasErrors() || !reflect.DeepEqual(names(again), names(lk)) {
				t.Errorf("written again, the lock does not parse to the same servers: %v", d2)
			}
		}
	})
}

func names(lk *spec.Lock) []string {
	var out []string
	for n, ls := range lk.Servers {
		out = append(out, n+"="+ls.Version+ls.Digest+ls.Constraint+ls.Source)
	}
	sort.Strings(out)
	return out
}

const lockedRepo = `provider "docker" "local" {}

server "search" {
  provider = provider.docker.local
  version  = "~> 1.4"
  image    = "registry.example.com/mcp/search:${version}"
}

server "gateway" {
  provider = provider.docker.local
  version  = "2.0.0"
  image    = "registry.example.com/mcp/gateway:${version}"
  requires "search" {
    version = "< 1.6.0"
  }
}
`

func lockFor(search string) []byte {
	lk := &spec.Lock{Servers: map[string]*spec.LockedServer{}}
	if search != "" {
		c, v, _ := strings.Cut(search, "=")
		lk.Servers["search"] = &spec.LockedServer{Name: "search", Constraint: c, Version: v, Digest: "sha256:" + strings.Repeat("1", 64), Source: "registry:registry.example.com/mcp/search"}
	}
	return lk.Bytes()
}

// TestLoadLocked: a constraint takes the version of the lock file, and a
// lock that is missing, stale, outside the constraint or breaking a pin is
// an error at the version attribute.
func TestLoadLocked(t *testing.T) {
	for _, tc := range []struct {
		name    string
		lock    []byte
		version string // the resolved version, or
		summary string // the error at search's version attribute
		detail  string
	}{
		{"locked", lockFor("~> 1.4=1.5.2"), "1.5.2", "", ""},
		{"no lock file", nil, "", "Version not locked", "no lock file (tend.lock.hcl): run tend lock"},
		{"no entry", lockFor(""), "", "Version not locked", `has no version for server "search"`},
		{"stale", lockFor("~> 1.3=1.5.2"), "", "Version not locked", `resolved "~> 1.3" for server "search", and its version is now "~> 1.4": the lock is stale`},
		{"outside the constraint", lockFor("~> 1.4=2.0.0"), "", "Version not locked", `does not satisfy "~> 1.4"`},
		{"breaks a pin", lockFor("~> 1.4=1.7.0"), "", "Locked version breaks a pin", `the server "gateway" requires it at < 1.6.0 (at lock/main.hcl:14,15-24)`},
		{"another source", []byte(strings.Replace(string(lockFor("~> 1.4=1.5.2")), "mcp/search", "mcp/search-old", 1)), "", "Version not locked",
			`from registry:registry.example.com/mcp/search-old, and the server's releases now come from registry:registry.example.com/mcp/search: the lock is stale`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			files := map[string][]byte{"main.hcl": []byte(lockedRepo)}
			if tc.lock != nil {
				files[spec.LockFileName] = tc.lock
			}
			l := spec.NewLoader(spec.Options{Environ: func(string) (string, bool) { return "", false }})
			cfg, diags := l.LoadFiles("lock", files)
			if tc.summary == "" {
				if diags.HasErrors() {
					t.Fatal(diags)
				}
				s := cfg.Servers["search"]
				if s.Version != tc.version || s.Image != "registry.example.com/mcp/search:"+tc.version+"@"+l.Lock().Servers["search"].Digest || s.Release.String() != "registry:registry.example.com/mcp/search" {
					t.Fatalf("search: version %q image %q release %v", s.Version, s.Image, s.Release)
				}
				if l.Lock() == nil || l.Lock().Servers["search"].Version != tc.version {
					t.Fatal("the loader does not give the lock it read")
				}
				return
			}
			if len(diags) != 1 || diags[0].Summary != tc.summary || !strings.Contains(diags[0].Detail, tc.detail) {
				t.Fatalf("diagnostics %v, want one %q saying %q", diags, tc.summary, tc.detail)
			}
			if r := diags[0].Subject; r == nil || r.Filename != filepath.Join("lock", "main.hcl") || r.Start.Line != 5 {
				t.Fatalf("the error is at %v, want search's version attribute (main.hcl line 5)", r)
			}
		})
	}
}

// TestReleaseSources: the release block, and the sources read from an
// image or a command; a constraint with no source, with an artifact, or a
// release block naming two sources is an error at its position.
func TestReleaseSources(t *testing.T) {
	for _, tc := range []struct {
		name, body, want, summary string
	}{
		{"image", `image = "127.0.0.1:5000/mcp/a:${version}"`, "registry:127.0.0.1:5000/mcp/a", ""},
		{"command file", `command = ["/opt/builds/a-${version}", "--port", "8000"]`, "path:/opt/builds/a-{version}", ""},
		{"command folder", `command = ["/opt/builds/${version}/a"]`, "path:/opt/builds/{version}/a", ""},
		{"git", "command = [\"./a\"]\n  release {\n    git = \"https://git.example.com/a.git\"\n  }", "git:https://git.example.com/a.git", ""},
		{"index", "command = [\"./a\"]\n  release {\n    index = \"https://releases.example.com/a.json\"\n  }", "index:https://releases.example.com/a.json", ""},
		{"path", "command = [\"./a\"]\n  release {\n    path = \"bin/a-{version}\"\n  }", "path:bin/a-{version}", ""},
		{"no source", `command = ["./a"]`, "", "No release source"},
		{"image by digest", `image = "r.example.com/a@sha256:` + strings.Repeat("0", 64) + `"`, "", "No release source"},
		{"two sources", "command = [\"./a\"]\n  release {\n    git = \"https://x/a.git\"\n    path = \"a-{version}\"\n  }", "", "Invalid release block"},
		{"path without placeholder", "command = [\"./a\"]\n  release {\n    path = \"bin/a\"\n  }", "", "Invalid release source"},
		{"registry with tag", "command = [\"./a\"]\n  release {\n    registry = \"r.example.com/a:1.0\"\n  }", "", "Invalid release source"},
		{"index not http", "command = [\"./a\"]\n  release {\n    index = \"/srv/a.json\"\n  }", "", "Invalid release source"},
		{"artifact", "command = [\"./a-${version}\"]\n  artifact {\n    url    = \"https://x/a.tgz\"\n    sha256 = \"" + strings.Repeat("0", 64) + "\"\n  }", "", "Version constraint with an artifact"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			provider := "process"
			if strings.HasPrefix(tc.body, "image") {
				provider = "docker"
			}
			src := `provider "` + provider + `" "p" {}
server "a" {
  version = "~> 1.0"
  ` + tc.body + `
}
`
			l := spec.NewLoader(spec.Options{Environ: func(string) (string, bool) { return "", false }, Unlocked: true})
			cfg, diags := l.LoadFiles("r", map[string][]byte{"main.hcl": []byte(src)})
			if tc.summary != "" {
				if len(diags) == 0 || diags[0].Summary != tc.summary || diags[0].Subject == nil {
					t.Fatalf("diagnostics %v, want %q with a position", diags, tc.summary)
				}
				return
			}
			if diags.HasErrors() {
				t.Fatal(diags)
			}
			if s := cfg.Servers["a"]; s.Version != "" || s.Release == nil || s.Release.String() != tc.want {
				t.Fatalf("version %q release %v, want unresolved from %s", s.Version, s.Release, tc.want)
			}
		})
	}
}

// TestCacheReadsLock: the daemon's loads keep a cache; a file whose server
// takes its version from the lock file is decoded again when the lock
// entry changes (tend lock -upgrade committed), and reused otherwise.
func TestCacheReadsLock(t *testing.T) {
	opts := testOptions(nil)
	files := map[string][]byte{
		"main.hcl": []byte("provider \"docker\" \"local\" {}\n"),
		"search.hcl": []byte(`server "search" {
  version = "~> 1.4"
  image   = "registry.example.com/mcp/search:${version}"
}
`),
		"db.hcl":          []byte("server \"db\" {\n  version = \"3.1.0\"\n  image   = \"registry.example.com/db:${version}\"\n}\n"),
		spec.LockFileName: lockFor("~> 1.4=1.5.2"),
	}
	l := spec.NewLoader(opts).WithCache(spec.NewCache())
	sameLoad(t, l, files, opts)
	cfg := sameLoad(t, l, files, opts)
	wantStats(t, l, 1, 2)
	if v := cfg.Servers["search"].Version; v != "1.5.2" {
		t.Fatalf("search at %s, want 1.5.2", v)
	}
	files[spec.LockFileName] = lockFor("~> 1.4=1.6.0")
	cfg = sameLoad(t, l, files, opts)
	wantStats(t, l, 2, 1)
	if s := cfg.Servers["search"]; s.Version != "1.6.0" || !strings.HasPrefix(s.Image, "registry.example.com/mcp/search:1.6.0@sha256:") {
		t.Fatalf("after the lock moved, search is at %s (%s)", s.Version, s.Image)
	}
	files["search.hcl"] = []byte("server \"search\" {\n  version = \"1.6.0\"\n  image   = \"registry.example.com/mcp/search:${version}\"\n}\n")
	if _, diags := l.LoadFiles("repo", files); len(diags) != 1 || diags[0].Summary != "Unused lock entry" || diags[0].Subject.Filename != filepath.Join("repo", spec.LockFileName) {
		t.Fatalf("a lock entry no server reads: %v", diags)
	}
	files["search.hcl"] = []byte(strings.Replace(string(files["search.hcl"]), `"1.6.0"`, `"~> 1.4"`, 1))
	delete(files, spec.LockFileName)
	if _, diags := l.LoadFiles("repo", files); len(diags) != 1 || diags[0].Summary != "Version not locked" {
		t.Fatalf("without the lock file: %v", diags)
	}
}
