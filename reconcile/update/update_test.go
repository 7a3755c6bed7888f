package update

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"

	"github.com/tendhq/tend/reconcile/source"
	"github.com/tendhq/tend/reconcile/versions"
	"github.com/tendhq/tend/spec"
)

// repo is a state repository in a bare git repository on disk, its api
// server taking the builds of a folder, locked at 1.4.2 by tend lock's
// code; a review branch is where update commits go.
type repo struct {
	t                 *testing.T
	bare, work, build string
	env               []string
}

func (r *repo) git(dir string, args ...string) string {
	r.t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir, cmd.Env = dir, r.env
	out, err := cmd.CombinedOutput()
	if err != nil {
		r.t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

func (r *repo) addBuilds(vs ...string) {
	for _, v := range vs {
		if err := os.WriteFile(filepath.Join(r.build, "api-"+v), []byte("build "+v), 0o755); err != nil {
			r.t.Fatal(err)
		}
	}
}

const mainHCL = `
tend {
  update {
    schedule = "@daily"
    policy   = "minor"
    commit   = true
    branch   = "tend/updates"
    author   = "tend bot <tend@example.com>"
  }
}
server "api" {
  version = ">= 1.4"
  command = ["BUILDS/api-${version}"]
  port    = 8000
}
server "web" {
  version = "~> 1.4"
  command = ["BUILDS/api-${version}"]
  port    = 9000
  update {
    commit = false
    policy = "patch"
  }
}
`

func newRepo(t *testing.T) *repo {
	if _, err := exec.LookPath("git"); err != nil {
		t.Fatal("git is needed (apt-get install git)")
	}
	d := t.TempDir()
	r := &repo{t: t, bare: filepath.Join(d, "fleet.git"), work: filepath.Join(d, "work"), build: filepath.Join(d, "builds"),
		env: []string{"HOME=" + d, "PATH=" + os.Getenv("PATH"), "GIT_CONFIG_NOSYSTEM=1",
			"GIT_AUTHOR_NAME=dev", "GIT_AUTHOR_EMAIL=dev@x", "GIT_COMMITTER_NAME=dev", "GIT_COMMITTER_EMAIL=dev@x"}}
	os.MkdirAll(r.build, 0o755)
	r.addBuilds("1.4.2")
	r.git(d, "init", "-q", "--bare", "-b", "main", r.bare)
	r.git(d, "init", "-q", "-b", "main", r.work)
	os.WriteFile(filepath.Join(r.work, "main.hcl"), []byte(strings.ReplaceAll(mainHCL, "BUILDS", r.build)), 0o644)
	cfg, _, diags := spec.Load(r.work, spec.Options{Unlocked: true})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	lk, _, diags := versions.Lock(context.Background(), &versions.Resolver{}, versions.LockRequest{Config: cfg})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	os.WriteFile(filepath.Join(r.work, spec.LockFileName), lk.Bytes(), 0o644)
	r.git(r.work, "add", "-A")
	r.git(r.work, "commit", "-q", "-m", "fleet")
	r.git(r.work, "push", "-q", r.bare, "main")
	return r
}

// loaded is the desired state tend run has: the files of main, loaded.
func (r *repo) loaded() (*spec.Config, map[string][]byte) {
	r.t.Helper()
	files, _, err := readDir(r.work)
	if err != nil {
		r.t.Fatal(err)
	}
	cfg, diags := spec.NewLoader(spec.Options{}).LoadFiles(r.work, files)
	if diags.HasErrors() {
		r.t.Fatal(diags)
	}
	return cfg, files
}

func readDir(dir string) (map[string][]byte, string, error) {
	files := map[string][]byte{}
	for _, n := range []string{"main.hcl", spec.LockFileName} {
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			return nil, "", err
		}
		files[n] = b
	}
	return files, "", nil
}

func (r *repo) runner() *Runner {
	g, err := source.NewGit(source.Options{URL: "file://" + r.bare, Ref: source.Ref{Kind: source.KindBranch, Name: "main"}, CacheDir: filepath.Join(r.t.TempDir(), "c")})
	if err != nil {
		r.t.Fatal(err)
	}
	return &Runner{Repo: g, Watched: "main", Describe: "file://" + r.bare}
}

func jobOf(t *testing.T, cfg *spec.Config, server string) Job {
	t.Helper()
	for _, j := range Jobs(cfg) {
		if _, ok := j.Policies[server]; ok {
			return j
		}
	}
	t.Fatalf("no job for %s", server)
	return Job{}
}

// TestJobs: servers with other commit settings are other jobs; the
// server's policy is its own.
func TestJobs(t *testing.T) {
	r := newRepo(t)
	cfg, _ := r.loaded()
	jobs := Jobs(cfg)
	if len(jobs) != 2 {
		t.Fatalf("jobs %+v", jobs)
	}
	api, web := jobOf(t, cfg, "api"), jobOf(t, cfg, "web")
	if !api.Commit || api.Branch != "tend/updates" || api.Policies["api"] != "minor" || len(api.Policies) != 1 || api.Schedule != "@daily" {
		t.Errorf("api job %+v", api)
	}
	if web.Commit || web.Branch != "" || web.Policies["web"] != "patch" || web.Key == api.Key {
		t.Errorf("web job %+v", web)
	}
}

// TestRunCommitsToReviewBranch: a new minor release is committed to the
// review branch, made from main, which does not move; the next run finds
// the branch up to date and commits nothing. Without commit, web's
// update is only reported, and the lock of main is as it was.
func TestRunCommitsToReviewBranch(t *testing.T) {
	r := newRepo(t)
	cfg, files := r.loaded()
	run := r.runner()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	rep := run.Run(ctx, cfg, files, jobOf(t, cfg, "api"))
	if rep.Error != "" || rep.Pushed != "" || len(rep.Moves()) != 0 || len(rep.Servers) != 1 {
		t.Fatalf("nothing new: %+v", rep)
	}
	if out := r.git(r.bare, "branch", "--list"); strings.Contains(out, "tend/updates") {
		t.Errorf("a run with nothing to update made the branch: %s", out)
	}

	r.addBuilds("1.4.3", "1.5.0", "2.0.0")
	mainBefore := r.git(r.bare, "rev-parse", "main")
	rep = run.Run(ctx, cfg, files, jobOf(t, cfg, "api"))
	if rep.Error != "" || rep.Pushed == "" || rep.Branch != "tend/updates" || rep.Attempts != 1 {
		t.Fatalf("update: %+v", rep)
	}
	m := rep.Moves()
	if len(m) != 1 || m[0].Server != "api" || m[0].To != "1.5.0" || m[0].Bump != "minor" {
		t.Fatalf("moves %+v", m)
	}
	if got := r.git(r.bare, "rev-parse", "tend/updates"); got != rep.Pushed {
		t.Errorf("tend/updates is %s, want %s", got, rep.Pushed)
	}
	if r.git(r.bare, "rev-parse", "main") != mainBefore {
		t.Error("main moved")
	}
	lock := r.git(r.bare, "show", "tend/updates:"+spec.LockFileName)
	if !strings.Contains(lock, `server "api" {
  constraint = ">= 1.4"
  version    = "1.5.0"`) || !strings.Contains(lock, `server "web" {
  constraint = "~> 1.4"
  version    = "1.4.2"`) {
		t.Errorf("lock on the branch:\n%s", lock)
	}
	if msg := r.git(r.bare, "log", "-1", "--format=%an|%B", "tend/updates"); !strings.HasPrefix(msg, "tend bot|tend: update api 1.4.2 → 1.5.0 (minor)\n\n- api: 1.4.2 → 1.5.0 (minor, policy minor)") {
		t.Errorf("message %q", msg)
	}

	again := run.Run(ctx, cfg, files, jobOf(t, cfg, "api"))
	if again.Error != "" || again.Pushed != "" || len(again.Moves()) != 0 {
		t.Errorf("second run: %+v", again)
	}
	if got := r.git(r.bare, "rev-list", "--count", "tend/updates"); got != "2" {
		t.Errorf("tend/updates has %s commits", got)
	}

	web := run.Run(ctx, cfg, files, jobOf(t, cfg, "web"))
	if web.Error != "" || web.Pushed != "" || len(web.Moves()) != 1 || web.Moves()[0].To != "1.4.3" {
		t.Errorf("web: %+v", web)
	}
	if got := r.git(r.bare, "rev-parse", "main"); got != mainBefore {
		t.Error("commit = false moved main")
	}
}

// TestRunSigningKeyProblems: a key that cannot sign stops the commit, and
// the report does not quote it; a directory cannot take a commit.
func TestRunSigningKeyProblems(t *testing.T) {
	r := newRepo(t)
	cfg, files := r.loaded()
	r.addBuilds("1.4.3")
	job := jobOf(t, cfg, "api")
	e, _ := openpgp.NewEntity("x", "", "x@x", nil)
	var pub bytes.Buffer
	w, _ := armor.Encode(&pub, openpgp.PublicKeyType, nil)
	_ = e.Serialize(w)
	w.Close()
	v := spec.Sensitive(pub.String())
	job.SigningKey = &v
	rep := r.runner().Run(context.Background(), cfg, files, job)
	if !strings.Contains(rep.Error, "not an armored OpenPGP private key") || strings.Contains(rep.Error, strings.Split(pub.String(), "\n")[3]) || rep.Pushed != "" {
		t.Errorf("public key: %+v", rep)
	}
	dir := &Runner{Describe: "/srv/fleet"}
	rep = dir.Run(context.Background(), cfg, files, jobOf(t, cfg, "api"))
	if !strings.Contains(rep.Error, "commit = true needs a git repository, and tend run watches the directory /srv/fleet") || len(rep.Moves()) != 1 {
		t.Errorf("directory: %+v", rep)
	}
}
