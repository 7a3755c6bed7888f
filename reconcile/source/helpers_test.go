package source

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// gitBin and httpBackend locate the real git; tests that need them skip
// without them.
var (
	gitOnce     sync.Once
	gitBin      string
	httpBackend string
)

func needGit(t testing.TB) {
	t.Helper()
	gitOnce.Do(func() {
		p, err := exec.LookPath("git")
		if err != nil {
			return
		}
		out, err := exec.Command(p, "--exec-path").Output()
		if err != nil {
			return
		}
		b := filepath.Join(strings.TrimSpace(string(out)), "git-http-backend")
		if _, err := os.Stat(b); err != nil {
			return
		}
		gitBin, httpBackend = p, b
	})
	if gitBin == "" {
		t.Fatal("git and git-http-backend are needed: tend requires git (apt-get install git)")
	}
}

// gitEnv is an environment in which the machine's git config never leaks in.
func gitEnv(home string) []string {
	return []string{
		"HOME=" + home,
		"PATH=" + os.Getenv("PATH"),
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_TERMINAL_PROMPT=0",
		"GIT_AUTHOR_NAME=Ada Author",
		"GIT_AUTHOR_EMAIL=ada@example.com",
		"GIT_COMMITTER_NAME=Ada Author",
		"GIT_COMMITTER_EMAIL=ada@example.com",
		"LC_ALL=C",
	}
}

// server is a real git smart-HTTP server on loopback: git http-backend
// behind net/http/cgi, serving root/repo.git, with a working clone to make
// commits in and push from (over HTTP).
type server struct {
	t    testing.TB
	home string
	root string // GIT_PROJECT_ROOT
	bare string // root/repo.git
	work string // working clone
	srv  *httptest.Server
	URL  string // the repository URL (no userinfo)

	// pushURL is URL with the credentials the server requires.
	pushURL string

	user, pass string // when set, every request needs this basic auth

	infoRefs    atomic.Int64 // GET info/refs?service=git-upload-pack
	uploadPacks atomic.Int64 // POST git-upload-pack

	hangAll    atomic.Bool // every request hangs until the client gives up
	hangUpload atomic.Bool // POST git-upload-pack hangs
	release    chan struct{}
	closeOnce  sync.Once

	mu     sync.Mutex
	bodies []string // upload-pack request bodies
}

type serverOpt func(*server)

func withBasicAuth(user, pass string) serverOpt {
	return func(s *server) { s.user, s.pass = user, pass }
}

func newServer(t testing.TB, opts ...serverOpt) *server {
	t.Helper()
	needGit(t)
	dir := t.TempDir()
	s := &server{t: t, home: filepath.Join(dir, "home"), root: filepath.Join(dir, "srv"), release: make(chan struct{})}
	for _, o := range opts {
		o(s)
	}
	s.bare = filepath.Join(s.root, "repo.git")
	s.work = filepath.Join(dir, "work")
	for _, d := range []string{s.home, s.root} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	s.git(dir, "init", "-q", "--bare", "-b", "main", s.bare)
	s.git(s.bare, "config", "http.receivepack", "true")
	s.git(dir, "init", "-q", "-b", "main", s.work)

	backend := &cgi.Handler{
		Path: httpBackend,
		Root: "/",
		Env: []string{
			"GIT_PROJECT_ROOT=" + s.root,
			"GIT_HTTP_EXPORT_ALL=1",
			"GIT_CONFIG_NOSYSTEM=1",
			"HOME=" + s.home,
		},
	}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.user != "" {
			u, p, ok := r.BasicAuth()
			if !ok || u != s.user || p != s.pass {
				w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
				http.Error(w, "authentication required", http.StatusUnauthorized)
				return
			}
		}
		upload := false
		switch {
		case r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/info/refs") && r.URL.Query().Get("service") == "git-upload-pack":
			s.infoRefs.Add(1)
		case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/git-upload-pack"):
			s.uploadPacks.Add(1)
			upload = true
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			s.mu.Lock()
			s.bodies = append(s.bodies, string(body))
			s.mu.Unlock()
		}
		if s.hangAll.Load() || upload && s.hangUpload.Load() {
			select {
			case <-r.Context().Done():
			case <-s.release:
			}
			return
		}
		backend.ServeHTTP(w, r)
	}))
	s.URL = s.srv.URL + "/repo.git"
	s.pushURL = s.URL
	if s.user != "" {
		s.pushURL = strings.Replace(s.URL, "http://", "http://"+s.user+":"+s.pass+"@", 1)
	}
	t.Cleanup(s.close)
	return s
}

// close stops the server, releasing hanging handlers first.
func (s *server) close() {
	s.closeOnce.Do(func() { close(s.release) })
	s.srv.Close()
}

func (s *server) git(dir string, args ...string) string {
	s.t.Helper()
	cmd := exec.Command(gitBin, args...)
	cmd.Dir = dir
	cmd.Env = gitEnv(s.home)
	out, err := cmd.CombinedOutput()
	if err != nil {
		s.t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// commit writes files (nil content deletes) in the working clone and
// commits them; it returns the commit hash.
func (s *server) commit(msg string, files map[string]string) string {
	s.t.Helper()
	for name, content := range files {
		p := filepath.Join(s.work, filepath.FromSlash(name))
		if content == "\x00delete" {
			if err := os.Remove(p); err != nil {
				s.t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			s.t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			s.t.Fatal(err)
		}
	}
	s.git(s.work, "add", "-A")
	s.git(s.work, "commit", "-q", "--allow-empty", "-m", msg)
	return s.git(s.work, "rev-parse", "HEAD")
}

// push pushes refspecs to the server over HTTP.
func (s *server) push(args ...string) {
	s.t.Helper()
	s.git(s.work, append([]string{"push", "-q", s.pushURL}, args...)...)
}

func (s *server) counts() (infoRefs, uploadPacks int64) {
	return s.infoRefs.Load(), s.uploadPacks.Load()
}

func (s *server) resetCounts() {
	s.infoRefs.Store(0)
	s.uploadPacks.Store(0)
	s.mu.Lock()
	s.bodies = nil
	s.mu.Unlock()
}

func (s *server) uploadBodies() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.bodies...)
}

// newGit makes a Git for the server's repository with a fresh cache.
func (s *server) newGit(ref string, mod ...func(*Options)) *Git {
	s.t.Helper()
	r, err := ParseRef(ref)
	if err != nil {
		s.t.Fatal(err)
	}
	o := Options{URL: s.URL, Ref: r, CacheDir: filepath.Join(s.t.TempDir(), "cache"), Timeout: 20 * time.Second}
	if s.user != "" {
		o.Auth = Auth{Username: s.user, Password: s.pass}
	}
	for _, m := range mod {
		m(&o)
	}
	g, err := NewGit(o)
	if err != nil {
		s.t.Fatal(err)
	}
	return g
}

func mustFetch(t testing.TB, g *Git) (*Snapshot, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	snap, changed, err := g.Fetch(ctx)
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	return snap, changed
}

func fileNames(files map[string][]byte) []string {
	var out []string
	for k := range files {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
