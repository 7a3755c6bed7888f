package source

import (
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/go-git/go-git/v5/storage/memory"
)

// Defaults.
const (
	DefaultTimeout  = 60 * time.Second
	DefaultMaxBytes = 32 << 20 // 32 MiB
)

// Auth holds the credentials for the remote. None of them is ever logged or
// put in an error text.
type Auth struct {
	SSHKeyFile, SSHKeyPassphrase string // SSH private key (PEM/OpenSSH)
	KnownHostsFile               string // required for ssh:// and scp-like URLs; host keys are always checked
	Username, Password           string // HTTPS basic auth (Password alone is ssh password auth for ssh remotes)
	Token                        string // HTTPS token, sent as basic auth with user "git" (or Username when set)
}

// String shows which credentials are set, never their values, so that
// printing Options (%v, %+v) does not leak them.
func (a Auth) String() string {
	var parts []string
	add := func(k, v string, secret bool) {
		if v == "" {
			return
		}
		if secret {
			v = "***"
		}
		parts = append(parts, k+":"+v)
	}
	add("SSHKeyFile", a.SSHKeyFile, false)
	add("SSHKeyPassphrase", a.SSHKeyPassphrase, true)
	add("KnownHostsFile", a.KnownHostsFile, false)
	add("Username", a.Username, false)
	add("Password", a.Password, true)
	add("Token", a.Token, true)
	return "{" + strings.Join(parts, " ") + "}"
}

// GoString is String, for %#v.
func (a Auth) GoString() string { return "source.Auth" + a.String() }

// Options configure a Git source.
type Options struct {
	// URL is https://, http://, ssh://, git@host:path, or file:// / a local
	// path. Userinfo in an http(s) URL is used as basic auth when Auth has
	// no credentials, and is never shown (see Remote).
	URL  string
	Ref  Ref
	Path string // sub-path of the repository holding the state (default: root); "../" refused
	// CacheDir is the directory of the bare clone. Empty keeps the clone in
	// memory (lost on restart, and Cached has nothing to serve after one).
	CacheDir string
	Auth     Auth
	Timeout  time.Duration // bound for each network call (default 60s); ctx cancels too
	// Keyring, when set, is an armored OpenPGP public keyring: the commit
	// (branch/commit refs) or the annotated tag (tag/semver refs; a
	// lightweight tag → its commit) must carry a valid signature by one of
	// its keys, else Fetch returns *SignatureError.
	Keyring string
	// MaxBytes bounds the total size of the files of a snapshot (default
	// 32 MiB); over it Fetch returns *SizeError.
	MaxBytes int64
}

// Snapshot is the desired state at one commit. Treat it as read-only: the
// same Snapshot is returned again while the ref does not move.
type Snapshot struct {
	Commit  string            // full hash of the checked-out commit
	Ref     string            // the resolved ref ("refs/heads/main", "refs/tags/v1.2.0"), or the commit
	Files   map[string][]byte // every regular file under Path, relative to it, slash-separated; hidden ones skipped
	Author  string            // "Name <email>"
	Message string            // first line
	Time    time.Time         // author time
	Signer  string            // the verifying key's identity, when Keyring was set
	// SignerKeyID is the id (16 hex digits) of the key that made the
	// verified signature, when Keyring was set.
	SignerKeyID string
	// Tag is the annotated tag object's hash when the ref is an annotated
	// tag, else empty.
	Tag string
}

// Git is a git source. Its methods are safe for concurrent use; calls are
// serialized. Use one Git per CacheDir (two processes sharing one are not
// coordinated).
type Git struct {
	opts    Options
	display string // URL without userinfo
	connect string // URL given to go-git (no userinfo for http)
	local   string // repository path, for file remotes
	auth    transport.AuthMethod
	keyring openpgp.EntityList
	path    string // cleaned sub-path, "" for the root
	red     redactor

	mu      sync.Mutex
	repo    *git.Repository
	last    atomic.Pointer[Snapshot]
	lastTip plumbing.Hash // the hash the ref pointed at for last (tag object or commit)
	// repackAfter is the number of packs over which the cache is repacked.
	repackAfter int
}

// NewGit validates the options and prepares credentials (reading the SSH
// key and known_hosts files). It does no network I/O and does not touch
// CacheDir.
func NewGit(o Options) (*Git, error) {
	g := &Git{opts: o, repackAfter: defaultRepackAfter}
	if o.URL == "" {
		return nil, errors.New("source: URL is required")
	}
	if err := o.Ref.validate(); err != nil {
		return nil, fmt.Errorf("source: invalid ref %q: %w", o.Ref.String(), err)
	}
	if o.Ref.Kind == KindCommit {
		g.opts.Ref.Name = strings.ToLower(o.Ref.Name)
	}
	p, err := cleanPath(o.Path)
	if err != nil {
		return nil, err
	}
	g.path = p
	if o.Timeout < 0 {
		return nil, fmt.Errorf("source: negative Timeout %s", o.Timeout)
	}
	if g.opts.Timeout == 0 {
		g.opts.Timeout = DefaultTimeout
	}
	if o.MaxBytes < 0 {
		return nil, fmt.Errorf("source: negative MaxBytes %d", o.MaxBytes)
	}
	if g.opts.MaxBytes == 0 {
		g.opts.MaxBytes = DefaultMaxBytes
	}
	if strings.TrimSpace(o.Keyring) != "" {
		kr, err := openpgp.ReadArmoredKeyRing(strings.NewReader(o.Keyring))
		if err != nil {
			return nil, fmt.Errorf("source: Keyring is not an armored OpenPGP keyring: %v", err)
		}
		if len(kr) == 0 {
			return nil, errors.New("source: Keyring holds no key")
		}
		g.keyring = kr
	}
	if err := g.setRemote(); err != nil {
		return nil, err
	}
	return g, nil
}

// setRemote parses the URL, strips its userinfo, and builds the auth method.
func (g *Git) setRemote() error {
	a := g.opts.Auth
	raw := strings.TrimSpace(g.opts.URL)
	ep, err := transport.NewEndpoint(raw)
	if err != nil {
		return invalidURL(raw, err)
	}
	g.red = newRedactor(a, ep.Password)
	switch ep.Protocol {
	case "http", "https":
		u, err := url.Parse(raw)
		if err != nil {
			return invalidURL(raw, err)
		}
		if u.User != nil {
			if a.Username == "" && a.Password == "" && a.Token == "" {
				a.Username = u.User.Username()
				a.Password, _ = u.User.Password()
			}
			u.User = nil
		}
		g.display, g.connect = u.String(), u.String()
		if a.SSHKeyFile != "" || a.KnownHostsFile != "" {
			return fmt.Errorf("source: SSHKeyFile/KnownHostsFile are for ssh remotes, not %s", g.display)
		}
		if a.Password != "" && a.Token != "" {
			return errors.New("source: set either Auth.Password or Auth.Token, not both")
		}
		if (a.Password != "" || a.Token != "") && u.Scheme == "http" && !isLoopback(u.Hostname()) {
			return fmt.Errorf("source: refusing to send credentials over plain http to %s; use https", g.display)
		}
		g.auth = httpAuth(a)
		// Options() gives back the URL without userinfo, the credentials in Auth.
		g.opts.URL, g.opts.Auth = g.connect, a
	case "ssh":
		g.display, g.connect = sshDisplay(raw, ep), raw
		if strings.HasPrefix(raw, "ssh://") {
			u, err := url.Parse(raw)
			if err != nil {
				return invalidURL(raw, err)
			}
			if pw, ok := u.User.Password(); ok && a.Password == "" && a.SSHKeyFile == "" {
				a.Password = pw
			}
			if u.User != nil {
				u.User = url.User(u.User.Username())
			}
			g.connect = u.String()
		}
		if a.Token != "" {
			return fmt.Errorf("source: Auth.Token is for https remotes, not %s", g.display)
		}
		auth, err := newSSHAuth(ep, a, g.opts.Timeout)
		if err != nil {
			return fmt.Errorf("source: %s: %s", g.display, g.red.str(err.Error()))
		}
		g.auth = auth
		g.opts.URL, g.opts.Auth = g.connect, a
	case "file":
		g.local = ep.Path
		if g.local == "" {
			return fmt.Errorf("source: invalid URL %q: no path", raw)
		}
		if !filepath.IsAbs(g.local) {
			abs, err := filepath.Abs(g.local)
			if err != nil {
				return fmt.Errorf("source: %v", err)
			}
			g.local = abs
		}
		g.display = "file://" + filepath.ToSlash(g.local)
		if a != (Auth{}) {
			return fmt.Errorf("source: credentials given for the local repository %s", g.display)
		}
	case "git":
		return fmt.Errorf("source: the git:// protocol is unauthenticated and unencrypted; use https or ssh")
	default:
		return fmt.Errorf("source: unsupported URL scheme %q", ep.Protocol)
	}
	return nil
}

// invalidURL reports a URL that does not parse without showing its
// userinfo: url.Parse's error quotes the whole URL, so only its inner
// reason is kept.
func invalidURL(raw string, err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	shown := stripUserinfo(raw)
	msg := err.Error()
	if shown != raw {
		// The reason may quote a part of the userinfo.
		msg = "malformed URL"
		if strings.Contains(err.Error(), "userinfo") {
			msg = "invalid userinfo"
		}
	}
	return fmt.Errorf("source: invalid URL %q: %s", shown, msg)
}

// stripUserinfo cuts "user:pass@" out of a URL-like string that may not
// parse.
func stripUserinfo(raw string) string {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return raw
	}
	authority, p := rest, ""
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		authority, p = rest[:i], rest[i:]
	}
	if i := strings.LastIndex(authority, "@"); i >= 0 {
		authority = authority[i+1:]
	}
	return scheme + "://" + authority + p
}

func newRedactor(a Auth, urlPassword string) redactor {
	var s []string
	for _, sec := range []string{a.Password, a.Token, a.SSHKeyPassphrase, urlPassword} {
		if sec == "" {
			continue
		}
		s = append(s, sec, url.QueryEscape(sec), url.PathEscape(sec))
	}
	for _, pair := range [][2]string{{a.Username, a.Password}, {"git", a.Token}, {a.Username, a.Token}} {
		if pair[1] != "" {
			s = append(s, base64.StdEncoding.EncodeToString([]byte(pair[0]+":"+pair[1])))
		}
	}
	return redactor{secrets: s}
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// cleanPath validates Options.Path: relative, no "..", slash-separated.
func cleanPath(p string) (string, error) {
	if p == "" {
		return "", nil
	}
	if strings.Contains(p, "\\") {
		return "", fmt.Errorf("source: Path %q: use forward slashes", p)
	}
	if path.IsAbs(p) {
		return "", fmt.Errorf("source: Path %q must be relative to the repository root", p)
	}
	for _, part := range strings.Split(p, "/") {
		if part == ".." {
			return "", fmt.Errorf("source: Path %q must not contain \"..\"", p)
		}
	}
	c := path.Clean(p)
	if c == "." {
		return "", nil
	}
	return c, nil
}

// Remote returns the URL with any userinfo removed, for logs.
func (g *Git) Remote() string { return g.display }

// Options returns the options in effect (defaults filled in). Its Auth
// holds the credentials: printing it shows "***" for them, but do not pass
// it around.
func (g *Git) Options() Options { return g.opts }

// Last returns the last snapshot Fetch returned, or nil. It does not wait
// for a Fetch under way.
func (g *Git) Last() *Snapshot { return g.last.Load() }

// open opens the cache, creating the bare repository on first use and
// reusing an existing one after a restart.
func (g *Git) open() error {
	if g.repo != nil {
		return nil
	}
	dir := g.opts.CacheDir
	if dir == "" {
		r, err := git.Init(memory.NewStorage(), nil)
		if err != nil {
			return fmt.Errorf("source: in-memory cache: %v", err)
		}
		g.repo = r
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("source: cache: %v", err)
	}
	r, err := git.PlainOpen(dir)
	if errors.Is(err, git.ErrRepositoryNotExists) {
		ents, rerr := os.ReadDir(dir)
		if rerr != nil {
			return fmt.Errorf("source: cache: %v", rerr)
		}
		if len(ents) > 0 {
			return fmt.Errorf("source: cache directory %s is neither empty nor a git repository; refusing to use it", dir)
		}
		r, err = git.PlainInit(dir, true)
	}
	if err != nil {
		return fmt.Errorf("source: cache %s: %v", dir, err)
	}
	if _, err := r.Worktree(); err == nil {
		return fmt.Errorf("source: cache directory %s holds a repository with a worktree; want a bare one", dir)
	}
	g.repo = r
	return nil
}

// target is what a ref resolves to.
type target struct {
	name plumbing.ReferenceName // the resolved ref; empty for a commit
	tip  plumbing.Hash          // what the ref points at: a tag object or a commit
}

func (t target) String() string {
	if t.name == "" {
		return t.tip.String()
	}
	return t.name.String()
}

// Fetch brings the cache up to date and returns the snapshot of the ref.
//
// It asks the remote for its refs (one round trip); when the ref still
// points where it did for the last snapshot, it fetches nothing and returns
// (last snapshot, false). Otherwise it fetches the ref, forced, with the
// objects the cache already has as a base, and returns (snapshot, true).
// The first call of a Git always returns changed=true, also after a restart
// on an existing cache. A commit ref that the cache already holds is served
// without any network round trip: a commit never changes.
//
// On error it returns a nil snapshot; the caller keeps its last good one
// (also available from Last, or from Cached after a restart).
func (g *Git) Fetch(ctx context.Context) (*Snapshot, bool, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := g.open(); err != nil {
		return nil, false, err
	}
	if err := ctx.Err(); err != nil {
		return nil, false, g.unreachable("ls-remote", err)
	}
	prev := g.last.Load()
	rem := g.remote()

	var t target
	if g.opts.Ref.Kind == KindCommit {
		h := plumbing.NewHash(g.opts.Ref.Name)
		if prev != nil && prev.Commit == h.String() {
			return prev, false, nil
		}
		t.tip = h
		if !g.hasCommit(h) {
			if err := g.fetch(ctx, rem, []config.RefSpec{"+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"}); err != nil {
				return nil, false, err
			}
			if !g.hasCommit(h) {
				return nil, false, &RefError{Remote: g.display, Ref: g.opts.Ref,
					Reason: fmt.Sprintf("commit %s not found in any branch or tag", h)}
			}
		}
	} else {
		refs, err := g.list(ctx, rem)
		if err != nil {
			return nil, false, err
		}
		t, err = g.resolve(refs)
		if err != nil {
			return nil, false, err
		}
		if prev != nil && g.lastTip == t.tip && prev.Ref == t.name.String() {
			return prev, false, nil
		}
		if g.hasObject(t.tip) {
			// Already here (a restart, or a ref moved back): no fetch, but
			// keep the local ref in step so it serves as a base later.
			if err := g.repo.Storer.SetReference(plumbing.NewHashReference(t.name, t.tip)); err != nil {
				return nil, false, fmt.Errorf("source: cache: %v", err)
			}
		} else {
			spec := config.RefSpec("+" + t.name.String() + ":" + t.name.String())
			if err := g.fetch(ctx, rem, []config.RefSpec{spec}); err != nil {
				return nil, false, err
			}
			// The ref may have moved on between ls-remote and fetch: take
			// what was fetched.
			if r, err := g.repo.Storer.Reference(t.name); err == nil {
				t.tip = r.Hash()
			}
			if !g.hasObject(t.tip) {
				return nil, false, fmt.Errorf("source: fetch of %s from %s did not bring %s", t.name, g.display, t.tip)
			}
		}
	}

	snap, err := g.snapshot(t)
	if err != nil {
		return nil, false, err
	}
	g.markGood(t)
	g.last.Store(snap)
	g.lastTip = t.tip
	changed := prev == nil || prev.Commit != snap.Commit || prev.Ref != snap.Ref
	return snap, changed, nil
}

// ErrNoCache is returned by Cached when the cache holds no good snapshot of
// the ref yet.
var ErrNoCache = errors.New("source: the cache holds no snapshot of this ref yet")

// Cached returns the last snapshot that a Fetch on this CacheDir served for
// this Ref and Path, read from the cache without any network I/O. It is for
// starting up while the remote is unreachable; signatures and the path are
// checked again. It returns ErrNoCache when there is none.
func (g *Git) Cached() (*Snapshot, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if last := g.last.Load(); last != nil {
		return last, nil
	}
	if err := g.open(); err != nil {
		return nil, err
	}
	r, err := g.repo.Storer.Reference(g.goodRef())
	if err != nil {
		return nil, ErrNoCache
	}
	t := target{tip: r.Hash()}
	switch g.opts.Ref.Kind {
	case KindBranch:
		t.name = plumbing.NewBranchReferenceName(g.opts.Ref.Name)
	case KindTag:
		t.name = plumbing.NewTagReferenceName(g.opts.Ref.Name)
	case KindSemver:
		t.name = g.localSemverName(t.tip)
	}
	return g.snapshot(t)
}

// goodRef is the cache ref that records the last good tip for this Ref and
// Path: refs/tend/last/<hash of both>. It also keeps that tip's objects
// reachable when the cache is repacked.
func (g *Git) goodRef() plumbing.ReferenceName {
	sum := sha1.Sum([]byte(g.opts.Ref.String() + "\x00" + g.path))
	return plumbing.ReferenceName("refs/tend/last/" + hex.EncodeToString(sum[:8]))
}

func (g *Git) markGood(t target) {
	// Best effort: failing to record only costs Cached after a restart.
	_ = g.repo.Storer.SetReference(plumbing.NewHashReference(g.goodRef(), t.tip))
}

func (g *Git) hasObject(h plumbing.Hash) bool {
	return g.repo.Storer.HasEncodedObject(h) == nil
}

func (g *Git) hasCommit(h plumbing.Hash) bool {
	_, err := g.repo.CommitObject(h)
	return err == nil
}

// httpAuth builds basic auth from a password or a token; nil when there are
// no credentials.
func httpAuth(a Auth) transport.AuthMethod {
	switch {
	case a.Token != "":
		user := a.Username
		if user == "" {
			user = "git"
		}
		return &githttp.BasicAuth{Username: user, Password: a.Token}
	case a.Username != "" || a.Password != "":
		return &githttp.BasicAuth{Username: a.Username, Password: a.Password}
	}
	return nil
}
