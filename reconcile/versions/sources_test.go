package versions

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/tendhq/tend/providers/docker/dockertest"
	"github.com/tendhq/tend/spec"
)

// listAll lists a source and fills every digest.
func listAll(t *testing.T, res *Resolver, rel *spec.Release) map[string]string {
	t.Helper()
	rs, src, err := res.Releases(context.Background(), rel)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, r := range rs {
		d, err := src.Digest(context.Background(), r)
		if err != nil {
			t.Fatalf("digest of %s: %v", r.Tag, err)
		}
		out[r.Version.String()] = d
	}
	return out
}

func runGit(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// serveGit serves the bare repositories under root with git http-backend
// on loopback.
func serveGit(t *testing.T, root string) string {
	t.Helper()
	execPath := "/usr/lib/git-core"
	if out, err := exec.Command("git", "--exec-path").Output(); err == nil {
		execPath = strings.TrimSpace(string(out))
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &cgi.Handler{Path: filepath.Join(execPath, "git-http-backend"), Env: []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1"}}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

// TestGitSource lists the tags of a repository served over git's smart
// HTTP protocol: lightweight and annotated tags give the commit they point
// to; branches and tags that are not versions are left out.
func TestGitSource(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("no git")
	}
	root := t.TempDir()
	work := filepath.Join(root, "work")
	os.MkdirAll(work, 0o755)
	runGit(t, work, "init", "--initial-branch=main")
	commits := map[string]string{}
	for _, v := range []string{"1.4.0", "1.4.2", "1.5.0", "2.0.0-rc.1"} {
		os.WriteFile(filepath.Join(work, "VERSION"), []byte(v), 0o644)
		runGit(t, work, "add", "VERSION")
		runGit(t, work, "commit", "-m", "release "+v)
		commits[v] = runGit(t, work, "rev-parse", "HEAD")
	}
	runGit(t, work, "tag", "v1.4.0", commits["1.4.0"])
	runGit(t, work, "tag", "-a", "-m", "annotated", "v1.4.2", commits["1.4.2"])
	runGit(t, work, "tag", "1.5.0", commits["1.5.0"])
	runGit(t, work, "tag", "v2.0.0-rc.1", commits["2.0.0-rc.1"])
	runGit(t, work, "tag", "nightly")
	runGit(t, work, "tag", "v1.6")
	runGit(t, root, "clone", "--bare", work, filepath.Join(root, "search.git"))
	url := serveGit(t, root) + "/search.git"

	got := listAll(t, &Resolver{}, &spec.Release{Kind: spec.ReleaseGit, Location: url})
	want := map[string]string{}
	for v, c := range commits {
		want[v] = "sha1:" + c
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("releases %v, want %v", got, want)
	}

	_, _, err := (&Resolver{}).Releases(context.Background(), &spec.Release{Kind: spec.ReleaseGit, Location: strings.Replace(url, "http://", "http://user:hunter2@", 1) + "-missing"})
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("a missing repository gave %v (want an error without the password)", err)
	}
}

// TestIndexSource reads a JSON index over HTTP; a bad digest is an error
// that names the release.
func TestIndexSource(t *testing.T) {
	d1 := "sha256:" + strings.Repeat("a", 64)
	d2 := "sha256:" + strings.Repeat("b", 64)
	doc := `{"releases": [{"version": "1.4.2", "digest": "` + d1 + `"}, {"version": "v1.5.0", "digest": "` + d2 + `", "url": "https://x/1.5.0.tgz"}, {"version": "nightly", "digest": "x"}]}`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/index.json":
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, doc)
		case "/bad.json":
			fmt.Fprint(w, `{"releases": [{"version": "1.0.0", "digest": "md5:1"}]}`)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	got := listAll(t, &Resolver{}, &spec.Release{Kind: spec.ReleaseIndex, Location: srv.URL + "/index.json"})
	if fmt.Sprint(got) != fmt.Sprint(map[string]string{"1.4.2": d1, "1.5.0": d2}) {
		t.Fatalf("releases %v", got)
	}
	for path, want := range map[string]string{"/bad.json": `release 1.0.0 has digest "md5:1"`, "/gone.json": "404 Not Found"} {
		_, _, err := (&Resolver{}).Releases(context.Background(), &spec.Release{Kind: spec.ReleaseIndex, Location: srv.URL + path})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want %q", path, err, want)
		}
	}
}

// TestPathSource lists the builds of both layouts the process provider
// runs: a file per version, and a folder per version.
func TestPathSource(t *testing.T) {
	dir := t.TempDir()
	sum := func(b string) string { s := sha256.Sum256([]byte(b)); return "sha256:" + hex.EncodeToString(s[:]) }
	for _, v := range []string{"1.4.2", "1.5.0", "1.5"} {
		os.WriteFile(filepath.Join(dir, "mcp-notes-"+v), []byte("build "+v), 0o755)
		os.MkdirAll(filepath.Join(dir, "v", v), 0o755)
		os.WriteFile(filepath.Join(dir, "v", v, "mcp-notes"), []byte("build "+v), 0o755)
	}
	os.MkdirAll(filepath.Join(dir, "v", "1.6.0"), 0o755) // no build inside: not a release
	os.MkdirAll(filepath.Join(dir, "mcp-notes-1.7.0"), 0o755)
	want := fmt.Sprint(map[string]string{"1.4.2": sum("build 1.4.2"), "1.5.0": sum("build 1.5.0")})
	for _, tmpl := range []string{dir + "/mcp-notes-{version}", dir + "/v/{version}/mcp-notes"} {
		if got := fmt.Sprint(listAll(t, &Resolver{}, &spec.Release{Kind: spec.ReleasePath, Location: tmpl})); got != want {
			t.Errorf("%s: %s, want %s", tmpl, got, want)
		}
	}
}

// TestRegistrySource lists the tags of a repository of the real registry
// (the distribution project's, on loopback), each with its manifest
// digest; a tag pushed again shows its new digest in Check.
func TestRegistrySource(t *testing.T) {
	addr := dockertest.Registry(t)
	repo := addr + "/mcp/search"
	digests := map[string]string{}
	for _, tag := range []string{"1.4.2", "1.5.0", "latest", "1.6.0-rc.1"} {
		digests[tag] = pushRandom(t, repo+":"+tag)
	}
	rel := &spec.Release{Kind: spec.ReleaseRegistry, Location: repo}
	got := listAll(t, &Resolver{}, rel)
	want := map[string]string{"1.4.2": digests["1.4.2"], "1.5.0": digests["1.5.0"], "1.6.0-rc.1": digests["1.6.0-rc.1"]}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("releases %v, want %v", got, want)
	}

	c, _ := spec.ParseConstraint("~> 1.4")
	cfg := &spec.Config{Servers: map[string]*spec.Server{"search": {Name: "search", Version: "1.5.0", VersionConstraint: "~> 1.4", Constraint: c, Release: rel}}}
	lk, changes, diags := Lock(context.Background(), &Resolver{}, LockRequest{Config: cfg})
	if diags.HasErrors() || len(changes) != 1 || lk.Servers["search"].Version != "1.5.0" || lk.Servers["search"].Digest != digests["1.5.0"] {
		t.Fatalf("lock: %v %+v %+v", diags, changes, lk.Servers["search"])
	}
	if moved, errs := Check(context.Background(), &Resolver{}, cfg, lk); len(moved)+len(errs) > 0 {
		t.Fatalf("check of a fresh lock: %v %v", moved, errs)
	}
	again := pushRandom(t, repo+":1.5.0")
	moved, errs := Check(context.Background(), &Resolver{}, cfg, lk)
	if len(errs) > 0 || len(moved) != 1 || moved[0].Now != again || moved[0].Locked != digests["1.5.0"] {
		t.Fatalf("check after 1.5.0 was pushed again: %+v %v", moved, errs)
	}
}

func pushRandom(t *testing.T, ref string) string {
	t.Helper()
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	tag, err := name.NewTag(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(tag, img); err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

// TestRegistryCredentials: a registry that requires a login is listed with
// the credentials of the docker provider's registry block; without them
// the error says so, and no error shows the password.
func TestRegistryCredentials(t *testing.T) {
	const user, password = "tend", "s3cret-pw-42"
	addr := dockertest.RegistryWithAuth(t, user, password)
	repo := addr + "/mcp/private"
	tag, _ := name.NewTag(repo + ":1.0.0")
	img, _ := random.Image(64, 1)
	if err := remote.Write(tag, img, remote.WithAuth(&authn.Basic{Username: user, Password: password})); err != nil {
		t.Fatal(err)
	}
	src := `provider "docker" "local" {
  registry "` + addr + `" {
    username = "` + user + `"
    password = secret("registry")
  }
}
server "a" {
  version = "~> 1.0"
  image   = "` + repo + `:${version}"
}
`
	load := func(pw string) *spec.Config {
		environ := func(k string) (string, bool) { return pw, k == "TEND_SECRET_REGISTRY" && pw != "" }
		cfg, diags := spec.NewLoader(spec.Options{Environ: environ, Unlocked: true}).LoadFiles("r", map[string][]byte{"main.hcl": []byte(src)})
		if diags.HasErrors() {
			t.Fatal(diags)
		}
		return cfg
	}
	cfg := load(password)
	lk, _, diags := Lock(context.Background(), &Resolver{Keychain: ConfigKeychain(cfg)}, LockRequest{Config: cfg})
	if diags.HasErrors() || lk.Servers["a"].Version != "1.0.0" {
		t.Fatalf("with the registry block: %v", diags)
	}
	for _, pw := range []string{"", "wrong-pw-77"} {
		cfg := load(pw)
		_, _, diags := Lock(context.Background(), &Resolver{Keychain: ConfigKeychain(cfg)}, LockRequest{Config: cfg})
		if !diags.HasErrors() || !strings.Contains(diags.Error(), "UNAUTHORIZED") {
			t.Fatalf("password %q: %v, want unauthorized", pw, diags)
		}
		if strings.Contains(diags.Error(), password) || pw != "" && strings.Contains(diags.Error(), pw) {
			t.Fatalf("the error shows the password: %v", diags)
		}
	}
}
