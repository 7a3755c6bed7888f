package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
)

func TestParseRef(t *testing.T) {
	hash := strings.Repeat("ab", 20)
	ok := []struct {
		in   string
		want Ref
		str  string
	}{
		{"main", Ref{KindBranch, "main"}, "branch:main"},
		{"branch:release/1.x", Ref{KindBranch, "release/1.x"}, "branch:release/1.x"},
		{"refs/heads/dev", Ref{KindBranch, "dev"}, "branch:dev"},
		{"tag:v1.2.0", Ref{KindTag, "v1.2.0"}, "tag:v1.2.0"},
		{"refs/tags/v1", Ref{KindTag, "v1"}, "tag:v1"},
		{"semver:>=1.2.0 <2.0.0", Ref{KindSemver, ">=1.2.0 <2.0.0"}, "semver:>=1.2.0 <2.0.0"},
		{" semver: ~1.2 ", Ref{KindSemver, "~1.2"}, "semver:~1.2"},
		{"commit:" + strings.ToUpper(hash), Ref{KindCommit, hash}, "commit:" + hash},
	}
	for _, c := range ok {
		got, err := ParseRef(c.in)
		if err != nil {
			t.Errorf("ParseRef(%q): %v", c.in, err)
			continue
		}
		if got != c.want || got.String() != c.str {
			t.Errorf("ParseRef(%q) = %#v (%q), want %#v (%q)", c.in, got, got.String(), c.want, c.str)
		}
		if back, err := ParseRef(got.String()); err != nil || back != got {
			t.Errorf("round trip of %q: %#v, %v", got.String(), back, err)
		}
	}
	bad := []struct{ in, says string }{
		{"", "empty ref"},
		{"semver:>>1", "not a valid semver range"},
		{"semver:", "missing name"},
		{"commit:abc", "40 hexadecimal digits"},
		{"commit:" + strings.Repeat("zz", 20), "40 hexadecimal digits"},
		{"branch:a..b", "not a valid git branch name"},
		{"branch:has space", "not a valid git branch name"},
		{"tag:v1.0.", "not a valid git tag name"},
		{"heads:main", `unknown kind "heads"`},
	}
	for _, c := range bad {
		_, err := ParseRef(c.in)
		if err == nil || !strings.Contains(err.Error(), c.says) {
			t.Errorf("ParseRef(%q) = %v, want an error saying %q", c.in, err, c.says)
		}
	}
	if _, err := ParseRef("semver:>>1"); err == nil || !strings.Contains(err.Error(), `">>1"`) {
		t.Errorf("the semver error should quote the range: %v", err)
	}
}

func TestNewGitValidation(t *testing.T) {
	main := Ref{KindBranch, "main"}
	kh := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(kh, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	bad := []struct {
		name string
		o    Options
		says string
	}{
		{"no URL", Options{Ref: main}, "URL is required"},
		{"no ref", Options{URL: "https://example.com/r.git"}, "invalid ref"},
		{"bad ref", Options{URL: "https://example.com/r.git", Ref: Ref{KindSemver, ">>1"}}, "not a valid semver range"},
		{"dotdot", Options{URL: "https://example.com/r.git", Ref: main, Path: "../etc"}, `must not contain ".."`},
		{"inner dotdot", Options{URL: "https://example.com/r.git", Ref: main, Path: "a/../../b"}, `must not contain ".."`},
		{"absolute", Options{URL: "https://example.com/r.git", Ref: main, Path: "/etc"}, "must be relative"},
		{"token and password", Options{URL: "https://example.com/r.git", Ref: main, Auth: Auth{Username: "u", Password: "p", Token: "t"}}, "either"},
		{"creds over http", Options{URL: "http://example.com/r.git", Ref: main, Auth: Auth{Token: "t0ken"}}, "plain http"},
		{"ssh key for https", Options{URL: "https://example.com/r.git", Ref: main, Auth: Auth{SSHKeyFile: "/k"}}, "for ssh remotes"},
		{"ssh without known_hosts", Options{URL: "ssh://git@example.com/r.git", Ref: main, Auth: Auth{SSHKeyFile: "/k"}}, "KnownHostsFile"},
		{"scp-like without known_hosts", Options{URL: "git@example.com:org/r.git", Ref: main, Auth: Auth{SSHKeyFile: "/k"}}, "KnownHostsFile"},
		{"known_hosts missing", Options{URL: "ssh://git@example.com/r.git", Ref: main, Auth: Auth{SSHKeyFile: "/k", KnownHostsFile: "/nonexistent/known_hosts"}}, "known_hosts file"},
		{"known_hosts without the host", Options{URL: "ssh://git@example.com/r.git", Ref: main, Auth: Auth{SSHKeyFile: "/k", KnownHostsFile: kh}}, "has no key for example.com:22"},
		{"git protocol", Options{URL: "git://example.com/r.git", Ref: main}, "git:// protocol"},
		{"bad keyring", Options{URL: "https://example.com/r.git", Ref: main, Keyring: "not a key"}, "Keyring"},
		{"negative timeout", Options{URL: "https://example.com/r.git", Ref: main, Timeout: -1}, "negative Timeout"},
	}
	for _, c := range bad {
		_, err := NewGit(c.o)
		if err == nil || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%s: NewGit = %v, want an error saying %q", c.name, err, c.says)
		}
	}

	for _, u := range []string{"https://alice:sec ret@example.com/r.git", "https://alice:sec%zzret@example.com/r.git", "ssh://git:sec ret@example.com/r.git"} {
		_, err := NewGit(Options{URL: u, Ref: main})
		if err == nil || strings.Contains(err.Error(), "sec") || !strings.Contains(err.Error(), "example.com/r.git") {
			t.Errorf("malformed URL %q: %v", u, err)
		}
	}

	g, err := NewGit(Options{URL: "https://alice:hunter22@example.com/org/r.git", Ref: main, Path: "./deploy/prod/"})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"%v", "%+v", "%#v", "%s"} {
		if out := fmt.Sprintf(f, g.Options()); strings.Contains(out, "hunter22") || !strings.Contains(out, "Password:***") {
			t.Errorf("Options printed with %s: %s", f, out)
		}
	}
	if o := g.Options(); o.URL != "https://example.com/org/r.git" || o.Auth.Username != "alice" || o.Auth.Password != "hunter22" {
		t.Errorf("Options() = %q %q: want the userinfo moved to Auth", o.URL, o.Auth.Username)
	}
	if g.Remote() != "https://example.com/org/r.git" {
		t.Errorf("Remote() = %q", g.Remote())
	}
	if g.path != "deploy/prod" {
		t.Errorf("path = %q", g.path)
	}
	if g.Options().Timeout != DefaultTimeout || g.Options().MaxBytes != DefaultMaxBytes {
		t.Errorf("defaults not filled: %+v", g.Options())
	}
	for _, p := range []string{"", ".", "./"} {
		g, err := NewGit(Options{URL: "https://example.com/r.git", Ref: main, Path: p})
		if err != nil || g.path != "" {
			t.Errorf("Path %q: %v, %q", p, err, g.path)
		}
	}
}

func TestFirstFetchClonesAndReadsFiles(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	s.commit("first state\n\nwith a body", map[string]string{
		"main.hcl":               "server \"a\" {}\n",
		"envs/prod/app.hcl":      "app = 1\n",
		"envs/prod/sub/db.hcl":   "db = 1\n",
		"envs/prod/.secret.hcl":  "hidden\n",
		"envs/prod/.cache/x.hcl": "hidden\n",
		".github/ci.yml":         "hidden\n",
		"envs/dev/app.hcl":       "app = 0\n",
	})
	if err := os.Symlink("app.hcl", filepath.Join(s.work, "envs/prod/link.hcl")); err != nil {
		t.Fatal(err)
	}
	head := s.commit("first state\n\nwith a body", nil)
	s.push("main")

	g := s.newGit("main")
	snap, changed := mustFetch(t, g)
	if !changed {
		t.Error("first fetch: changed=false")
	}
	if snap.Commit != head || snap.Ref != "refs/heads/main" {
		t.Errorf("snapshot %s %s, want %s refs/heads/main", snap.Commit, snap.Ref, head)
	}
	want := []string{"envs/dev/app.hcl", "envs/prod/app.hcl", "envs/prod/sub/db.hcl", "main.hcl"}
	if got := fileNames(snap.Files); !slices.Equal(got, want) {
		t.Errorf("files %v, want %v (no hidden files, no symlinks)", got, want)
	}
	if string(snap.Files["main.hcl"]) != "server \"a\" {}\n" {
		t.Errorf("main.hcl = %q", snap.Files["main.hcl"])
	}
	if snap.Message != "first state" || snap.Author != "Ada Author <ada@example.com>" || snap.Time.IsZero() {
		t.Errorf("metadata: %q %q %v", snap.Message, snap.Author, snap.Time)
	}
	// The cache is a bare clone: no worktree files on disk.
	cache := g.Options().CacheDir
	if _, err := os.Stat(filepath.Join(cache, "HEAD")); err != nil {
		t.Errorf("no bare repository in the cache: %v", err)
	}
	if _, err := os.Stat(filepath.Join(cache, "main.hcl")); !os.IsNotExist(err) {
		t.Errorf("a worktree file was written: %v", err)
	}

	sub := s.newGit("main", func(o *Options) { o.Path = "envs/prod" })
	snap, _ = mustFetch(t, sub)
	if got := fileNames(snap.Files); !slices.Equal(got, []string{"app.hcl", "sub/db.hcl"}) {
		t.Errorf("sub-path files %v", got)
	}

	for _, c := range []struct{ path, says string }{{"nope", "does not exist"}, {"main.hcl", "is not a directory"}} {
		g := s.newGit("main", func(o *Options) { o.Path = c.path })
		_, _, err := g.Fetch(context.Background())
		var pe *PathError
		if !errors.As(err, &pe) || pe.Commit != head || !strings.Contains(err.Error(), c.says) {
			t.Errorf("Path %q: %v, want *PathError saying %q", c.path, err, c.says)
		}
	}

	small := s.newGit("main", func(o *Options) { o.MaxBytes = 20 })
	_, _, err := small.Fetch(context.Background())
	var se *SizeError
	if !errors.As(err, &se) || se.Limit != 20 {
		t.Errorf("MaxBytes 20: %v, want *SizeError", err)
	}
}

func TestNoChangeAndNewCommit(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	s.commit("one", map[string]string{"a.hcl": "a = 1\n"})
	s.push("main")
	g := s.newGit("main")
	first, _ := mustFetch(t, g)

	s.resetCounts()
	again, changed := mustFetch(t, g)
	if changed || again != first {
		t.Errorf("nothing pushed: changed=%v, same snapshot=%v", changed, again == first)
	}
	if ir, up := s.counts(); ir != 1 || up != 0 {
		t.Errorf("nothing pushed: %d ref advertisements and %d upload-pack POSTs, want 1 and 0", ir, up)
	}

	head := s.commit("two", map[string]string{"b.hcl": "b = 2\n", "a.hcl": "\x00delete"})
	s.push("main")
	s.resetCounts()
	snap, changed := mustFetch(t, g)
	if !changed || snap.Commit != head {
		t.Fatalf("after a push: changed=%v commit=%s, want true %s", changed, snap.Commit, head)
	}
	if got := fileNames(snap.Files); !slices.Equal(got, []string{"b.hcl"}) {
		t.Errorf("files %v, want [b.hcl]", got)
	}
	if _, up := s.counts(); up != 1 {
		t.Errorf("%d upload-pack POSTs, want 1", up)
	}
	// Incremental: the fetch told the server what the cache already has.
	if b := s.uploadBodies(); len(b) != 1 || !strings.Contains(b[0], "have "+first.Commit) {
		t.Errorf("the fetch did not send the cached commit as a have: %q", b)
	}
	if g.Last() != snap {
		t.Error("Last() is not the last snapshot")
	}
}

func TestTagSemverAndCommitRefs(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	c1 := s.commit("c1", map[string]string{"v.hcl": "1.0.0"})
	s.git(s.work, "tag", "v1.0.0")
	c2 := s.commit("c2", map[string]string{"v.hcl": "1.2.0"})
	s.git(s.work, "tag", "-a", "-m", "release 1.2.0", "v1.2.0")
	c3 := s.commit("c3", map[string]string{"v.hcl": "1.3.0"})
	s.git(s.work, "tag", "1.3.0") // no "v"
	s.commit("c4", map[string]string{"v.hcl": "1.4.0-rc.1"})
	s.git(s.work, "tag", "v1.4.0-rc.1") // a prerelease: not matched by a plain range
	c5 := s.commit("c5", map[string]string{"v.hcl": "2.0.0"})
	s.git(s.work, "tag", "-a", "-m", "release 2", "v2.0.0")
	s.git(s.work, "tag", "not-a-version")
	s.push("main", "--tags")

	check := func(ref, wantRef, wantCommit string) *Git {
		t.Helper()
		g := s.newGit(ref)
		snap, changed := mustFetch(t, g)
		if !changed || snap.Ref != wantRef || snap.Commit != wantCommit {
			t.Errorf("%s: changed=%v ref=%s commit=%s, want %s %s", ref, changed, snap.Ref, snap.Commit, wantRef, wantCommit)
		}
		return g
	}
	check("tag:v1.0.0", "refs/tags/v1.0.0", c1)
	annotated := check("tag:v1.2.0", "refs/tags/v1.2.0", c2)
	if annotated.Last().Tag == "" {
		t.Error("annotated tag: Snapshot.Tag is empty")
	}
	check("semver:>=1.0.0 <2.0.0", "refs/tags/1.3.0", c3)
	check("semver:~1.2", "refs/tags/v1.2.0", c2)
	check("semver:*", "refs/tags/v2.0.0", c5)
	pinned := check("commit:"+c2, c2, c2)

	// A pinned commit never changes: no network at all once cached.
	s.resetCounts()
	if _, changed := mustFetch(t, pinned); changed {
		t.Error("pinned commit: changed=true on the second fetch")
	}
	if ir, up := s.counts(); ir != 0 || up != 0 {
		t.Errorf("pinned commit: %d+%d requests, want none", ir, up)
	}

	// A new matching tag moves the semver ref.
	g := s.newGit("semver:>=1.0.0 <2.0.0")
	mustFetch(t, g)
	if _, changed := mustFetch(t, g); changed {
		t.Error("semver: changed=true with no new tag")
	}
	c6 := s.commit("c6", map[string]string{"v.hcl": "1.5.0"})
	s.git(s.work, "tag", "v1.5.0")
	s.push("main", "--tags")
	snap, changed := mustFetch(t, g)
	if !changed || snap.Ref != "refs/tags/v1.5.0" || snap.Commit != c6 {
		t.Errorf("semver after v1.5.0: changed=%v %s %s", changed, snap.Ref, snap.Commit)
	}

	// What does not exist.
	for _, c := range []struct{ ref, says, lists string }{
		{"tag:v9.9.9", `tag "v9.9.9" not found`, "tags: 1.3.0, not-a-version, v1.0.0"},
		{"semver:>=3.0.0", `no tag matches the semver range ">=3.0.0"`, "semver tags: v2.0.0, v1.5.0, v1.4.0-rc.1, 1.3.0"},
		{"commit:" + strings.Repeat("0", 39) + "1", "not found in any branch or tag", ""},
	} {
		_, _, err := s.newGit(c.ref).Fetch(context.Background())
		var re *RefError
		if !errors.As(err, &re) || !strings.Contains(err.Error(), c.says) || !strings.Contains(err.Error(), c.lists) {
			t.Errorf("%s: %v, want *RefError saying %q and listing %q", c.ref, err, c.says, c.lists)
		}
	}
}

func TestForcePushRewritesHistory(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	a := s.commit("A", map[string]string{"a.hcl": "a"})
	s.commit("B", map[string]string{"b.hcl": "b"})
	s.push("main")
	g := s.newGit("main")
	mustFetch(t, g)

	s.git(s.work, "reset", "-q", "--hard", a)
	c := s.commit("C", map[string]string{"c.hcl": "c"})
	s.push("--force", "main")
	snap, changed := mustFetch(t, g)
	if !changed || snap.Commit != c {
		t.Fatalf("after a force-push: changed=%v commit=%s, want %s", changed, snap.Commit, c)
	}
	if got := fileNames(snap.Files); !slices.Equal(got, []string{"a.hcl", "c.hcl"}) {
		t.Errorf("files %v, want [a.hcl c.hcl]", got)
	}
	// And back to an old commit that the cache still has.
	s.git(s.work, "reset", "-q", "--hard", a)
	s.push("--force", "main")
	s.resetCounts()
	snap, changed = mustFetch(t, g)
	if !changed || snap.Commit != a {
		t.Errorf("reset to A: changed=%v commit=%s, want %s", changed, snap.Commit, a)
	}
	if _, up := s.counts(); up != 0 {
		t.Errorf("the cache had A, yet %d upload-pack POSTs", up)
	}
}

func TestMissingBranchListsBranches(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	s.commit("one", map[string]string{"a.hcl": "a"})
	s.push("main", "main:dev", "main:feature/x")
	_, _, err := s.newGit("prod").Fetch(context.Background())
	var re *RefError
	if !errors.As(err, &re) {
		t.Fatalf("missing branch: %v, want *RefError", err)
	}
	if !slices.Equal(re.Available, []string{"dev", "feature/x", "main"}) || re.What != "branches" {
		t.Errorf("Available = %v (%s)", re.Available, re.What)
	}
	if !strings.Contains(err.Error(), `branch "prod" not found`) || !strings.Contains(err.Error(), "branches: dev, feature/x, main") {
		t.Errorf("message: %v", err)
	}
	if !strings.Contains(err.Error(), s.URL) {
		t.Errorf("message does not name the remote: %v", err)
	}
}

func TestEmptyRepository(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	_, _, err := s.newGit("main").Fetch(context.Background())
	var re *RefError
	if !errors.As(err, &re) || !strings.Contains(err.Error(), "empty") {
		t.Errorf("empty repository: %v, want *RefError", err)
	}
}

func TestRemoteDownServesCache(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	head := s.commit("one", map[string]string{"a.hcl": "a"})
	s.push("main")
	g := s.newGit("main")
	good, _ := mustFetch(t, g)
	cacheDir := g.Options().CacheDir

	s.close()
	_, _, err := g.Fetch(context.Background())
	var ue *UnreachableError
	if !errors.As(err, &ue) || ue.Reason != ReasonNetwork || ue.Remote != s.URL {
		t.Fatalf("server closed: %v, want *UnreachableError (network)", err)
	}
	if !strings.Contains(err.Error(), s.URL) {
		t.Errorf("message does not name the remote: %v", err)
	}
	if g.Last() != good {
		t.Error("Last() lost the good snapshot")
	}

	// A restart while the remote is down: Fetch fails, Cached serves.
	g2, err := NewGit(g.Options())
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := g2.Fetch(context.Background()); !errors.As(err, &ue) {
		t.Fatalf("restart, server closed: %v, want *UnreachableError", err)
	}
	snap, err := g2.Cached()
	if err != nil {
		t.Fatalf("Cached: %v", err)
	}
	if snap.Commit != head || snap.Ref != "refs/heads/main" || string(snap.Files["a.hcl"]) != "a" {
		t.Errorf("Cached = %s %s %v", snap.Commit, snap.Ref, fileNames(snap.Files))
	}
	// Cached is per ref: another ref on the same cache has nothing yet.
	o := g.Options()
	o.Ref = Ref{KindBranch, "dev"}
	o.CacheDir = cacheDir
	g3, _ := NewGit(o)
	if _, err := g3.Cached(); !errors.Is(err, ErrNoCache) {
		t.Errorf("Cached for another ref: %v, want ErrNoCache", err)
	}
}

func TestTimeout(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	s.commit("one", map[string]string{"a.hcl": "a"})
	s.push("main")

	for _, mode := range []string{"ls-remote", "fetch"} {
		s.hangAll.Store(mode == "ls-remote")
		s.hangUpload.Store(mode == "fetch")
		g := s.newGit("main", func(o *Options) { o.Timeout = 300 * time.Millisecond })
		start := time.Now()
		_, _, err := g.Fetch(context.Background())
		took := time.Since(start)
		var ue *UnreachableError
		if !errors.As(err, &ue) || ue.Reason != ReasonTimeout || ue.Op != mode {
			t.Errorf("%s hangs: %v, want *UnreachableError timeout in %s", mode, err, mode)
			continue
		}
		if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "timed out after 300ms") {
			t.Errorf("%s hangs: %v", mode, err)
		}
		if took > 3*time.Second {
			t.Errorf("%s hangs: Fetch took %s with a 300ms timeout", mode, took)
		}
	}

	// The caller's context cancels too.
	s.hangAll.Store(true)
	g := s.newGit("main")
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	_, _, err := g.Fetch(ctx)
	var ue *UnreachableError
	if !errors.As(err, &ue) || ue.Reason != ReasonCanceled || !errors.Is(err, context.Canceled) {
		t.Errorf("canceled: %v", err)
	}
}

func TestAuth(t *testing.T) {
	t.Parallel()
	const user, pass = "alice", "Pa55-w0rd-s3cret"
	s := newServer(t, withBasicAuth(user, pass))
	head := s.commit("one", map[string]string{"a.hcl": "a"})
	s.push("main")

	if snap, _ := mustFetch(t, s.newGit("main")); snap.Commit != head {
		t.Errorf("basic auth: commit %s", snap.Commit)
	}

	// Credentials in the URL are used, and never shown.
	withURL := s.newGit("main", func(o *Options) { o.URL = s.pushURL; o.Auth = Auth{} })
	if withURL.Remote() != s.URL {
		t.Errorf("Remote() = %q, want %q", withURL.Remote(), s.URL)
	}
	mustFetch(t, withURL)

	secrets := []string{pass, "wrong-Pa55-XYZ", "tok_WRONG_123456"}
	noLeak := func(name string, err error) {
		t.Helper()
		var ue *UnreachableError
		if !errors.As(err, &ue) || ue.Reason != ReasonAuth {
			t.Errorf("%s: %v, want *UnreachableError (auth)", name, err)
			return
		}
		texts := []string{err.Error(), ue.Err.Error()}
		for e := errors.Unwrap(err); e != nil; e = errors.Unwrap(e) {
			texts = append(texts, e.Error())
		}
		for _, txt := range texts {
			for _, sec := range secrets {
				if strings.Contains(txt, sec) {
					t.Errorf("%s: error text leaks a secret: %q", name, txt)
				}
			}
		}
	}
	for name, a := range map[string]Auth{
		"no credentials": {},
		"wrong password": {Username: user, Password: "wrong-Pa55-XYZ"},
		"wrong token":    {Token: "tok_WRONG_123456"},
	} {
		g := s.newGit("main", func(o *Options) { o.Auth = a })
		_, _, err := g.Fetch(context.Background())
		noLeak(name, err)
	}
	wrongURL := strings.Replace(s.pushURL, pass, "wrong-Pa55-XYZ", 1)
	g := s.newGit("main", func(o *Options) { o.URL = wrongURL; o.Auth = Auth{} })
	_, _, err := g.Fetch(context.Background())
	noLeak("wrong password in the URL", err)
}

func TestTokenAuth(t *testing.T) {
	t.Parallel()
	const token = "ghp_T0kenT0kenT0ken"
	s := newServer(t, withBasicAuth("git", token))
	head := s.commit("one", map[string]string{"a.hcl": "a"})
	s.push("main")
	g := s.newGit("main", func(o *Options) { o.Auth = Auth{Token: token} })
	if snap, _ := mustFetch(t, g); snap.Commit != head {
		t.Errorf("token auth: commit %s", snap.Commit)
	}
	// A token with the wrong user (a password for "alice") is refused, and
	// the error does not carry it.
	g = s.newGit("main", func(o *Options) { o.Auth = Auth{Username: "alice", Password: token} })
	_, _, err := g.Fetch(context.Background())
	var ue *UnreachableError
	if !errors.As(err, &ue) || ue.Reason != ReasonAuth || strings.Contains(err.Error(), token) {
		t.Errorf("wrong user: %v", err)
	}
}

func TestRestartFetchesIncrementally(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	old := s.commit("one", map[string]string{"a.hcl": "a"})
	s.push("main")
	g := s.newGit("main")
	mustFetch(t, g)
	opts := g.Options()

	// Restart with nothing new: the cache already has the commit, no fetch.
	s.resetCounts()
	g2, err := NewGit(opts)
	if err != nil {
		t.Fatal(err)
	}
	snap, changed := mustFetch(t, g2)
	if !changed || snap.Commit != old {
		t.Errorf("restart: changed=%v commit=%s", changed, snap.Commit)
	}
	if ir, up := s.counts(); ir != 1 || up != 0 {
		t.Errorf("restart with nothing new: %d ref advertisements, %d upload-pack POSTs; want 1 and 0", ir, up)
	}

	// Restart after a push: one fetch, based on what the cache holds.
	head := s.commit("two", map[string]string{"b.hcl": "b"})
	s.push("main")
	s.resetCounts()
	g3, err := NewGit(opts)
	if err != nil {
		t.Fatal(err)
	}
	snap, changed = mustFetch(t, g3)
	if !changed || snap.Commit != head || len(snap.Files) != 2 {
		t.Errorf("restart after a push: changed=%v commit=%s files=%v", changed, snap.Commit, fileNames(snap.Files))
	}
	bodies := s.uploadBodies()
	if len(bodies) != 1 || !strings.Contains(bodies[0], "have "+old) {
		t.Errorf("the fetch after a restart did not build on the cache (haves): %q", bodies)
	}
}

func TestMemoryCache(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	head := s.commit("one", map[string]string{"a.hcl": "a"})
	s.push("main")
	g := s.newGit("main", func(o *Options) { o.CacheDir = "" })
	if snap, _ := mustFetch(t, g); snap.Commit != head {
		t.Errorf("memory cache: %s", snap.Commit)
	}
	if _, changed := mustFetch(t, g); changed {
		t.Error("memory cache: changed=true with nothing pushed")
	}
}

func TestCacheDirMustBeARepository(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "precious.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	g, err := NewGit(Options{URL: "https://example.com/r.git", Ref: Ref{KindBranch, "main"}, CacheDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := g.Fetch(context.Background()); err == nil || !strings.Contains(err.Error(), "neither empty nor a git repository") {
		t.Errorf("non-empty non-repository cache dir: %v", err)
	}
}

// TestLocalRepository fetches from a local path and a file:// URL with PATH
// emptied, so that any attempt to run the git CLI would fail.
func TestLocalRepository(t *testing.T) {
	s := newServer(t)
	first := s.commit("one", map[string]string{"a.hcl": "a", "sub/b.hcl": "b"})
	s.git(s.work, "tag", "-a", "-m", "v1", "v1.0.0")
	second := s.commit("two", map[string]string{"c.hcl": "c"})

	for _, url := range []string{s.work, "file://" + s.work} {
		for _, cacheDir := range []string{filepath.Join(t.TempDir(), "cache"), ""} {
			t.Setenv("PATH", "")
			g, err := NewGit(Options{URL: url, Ref: Ref{KindBranch, "main"}, CacheDir: cacheDir})
			if err != nil {
				t.Fatal(err)
			}
			snap, changed := mustFetch(t, g)
			if !changed || snap.Commit != second || len(snap.Files) != 3 {
				t.Fatalf("%s: changed=%v %s %v", url, changed, snap.Commit, fileNames(snap.Files))
			}
			if _, changed := mustFetch(t, g); changed {
				t.Errorf("%s: changed=true with no new commit", url)
			}
			tg, err := NewGit(Options{URL: url, Ref: Ref{KindTag, "v1.0.0"}, CacheDir: cacheDir})
			if err != nil {
				t.Fatal(err)
			}
			if snap, _ := mustFetch(t, tg); snap.Commit != first {
				t.Errorf("%s: tag resolved to %s, want %s", url, snap.Commit, first)
			}
			t.Setenv("PATH", os.Getenv("PATH"))
		}
	}

	// A new commit in the local repository is picked up.
	g, _ := NewGit(Options{URL: s.work, Ref: Ref{KindBranch, "main"}, CacheDir: filepath.Join(t.TempDir(), "c")})
	mustFetch(t, g)
	third := s.commit("three", map[string]string{"d.hcl": "d"})
	if snap, changed := mustFetch(t, g); !changed || snap.Commit != third {
		t.Errorf("local new commit: %v %s", changed, snap.Commit)
	}
	// A missing local repository is unreachable.
	g, _ = NewGit(Options{URL: filepath.Join(t.TempDir(), "nope"), Ref: Ref{KindBranch, "main"}})
	var ue *UnreachableError
	if _, _, err := g.Fetch(context.Background()); !errors.As(err, &ue) || ue.Reason != ReasonNotFound {
		t.Errorf("missing local repository: %v", err)
	}
}

func BenchmarkNoopFetch(b *testing.B) {
	s := newServer(b)
	s.commit("one", map[string]string{"a.hcl": "a", "envs/prod/b.hcl": "b"})
	s.push("main")
	g := s.newGit("main")
	mustFetch(b, g)
	s.resetCounts()
	ctx := context.Background()
	n := 0
	for b.Loop() {
		if _, changed, err := g.Fetch(ctx); err != nil || changed {
			b.Fatalf("noop fetch: changed=%v err=%v", changed, err)
		}
		n++
	}
	if ir, up := s.counts(); ir != int64(n) || up != 0 {
		b.Fatalf("%d fetches made %d ref advertisements and %d upload-pack POSTs", n, ir, up)
	}
}

func TestCacheIsRepacked(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	a := s.commit("A", map[string]string{"a.hcl": "a"})
	s.push("main")
	g := s.newGit("main")
	g.repackAfter = 2
	mustFetch(t, g)
	packs := func() int {
		m, _ := filepath.Glob(filepath.Join(g.Options().CacheDir, "objects", "pack", "*.pack"))
		return len(m)
	}
	var rewritten string
	for i := range 5 {
		rewritten = s.commit(fmt.Sprintf("c%d", i), map[string]string{"n.hcl": fmt.Sprint(i)})
		s.push("main")
		mustFetch(t, g)
		if n := packs(); n > 3 {
			t.Fatalf("after %d fetches: %d packs, want at most 3", i+2, n)
		}
	}
	// A force-push leaves the rewritten history unreachable; a repack drops it.
	s.git(s.work, "reset", "-q", "--hard", a)
	for i := range 3 {
		s.commit(fmt.Sprintf("d%d", i), map[string]string{"d.hcl": fmt.Sprint(i)})
		s.push("--force", "main")
		snap, changed := mustFetch(t, g)
		if !changed || snap.Files["d.hcl"] == nil {
			t.Fatalf("after force-push %d: changed=%v files=%v", i, changed, fileNames(snap.Files))
		}
	}
	if g.hasObject(plumbing.NewHash(rewritten)) {
		t.Error("the rewritten history is still in the repacked cache")
	}
	// The repacked cache serves a restart.
	g2, _ := NewGit(g.Options())
	s.resetCounts()
	if snap, _ := mustFetch(t, g2); snap.Commit != g.Last().Commit {
		t.Errorf("restart on a repacked cache: %s", snap.Commit)
	}
	if _, up := s.counts(); up != 0 {
		t.Errorf("restart on a repacked cache fetched (%d POSTs)", up)
	}
}

// BenchmarkInfoRefsBaseline is the floor under BenchmarkNoopFetch: one bare
// GET of the ref advertisement from the same server (git-http-backend forks
// per request), with no go-git in between.
func BenchmarkInfoRefsBaseline(b *testing.B) {
	s := newServer(b)
	s.commit("one", map[string]string{"a.hcl": "a"})
	s.push("main")
	u := s.URL + "/info/refs?service=git-upload-pack"
	for b.Loop() {
		resp, err := http.Get(u)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatal(resp.Status)
		}
	}
}
