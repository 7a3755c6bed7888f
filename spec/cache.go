package spec

import (
	"crypto/sha256"
	"encoding/hex"
	"sort"
	"strings"
	"sync"

	"github.com/Masterminds/semver/v3"
	"github.com/zclconf/go-cty/cty"
)

// Cache keeps, from one load of a repository to the next, the servers that
// each of its files declares, so that a new revision that changes one file
// of a large repository parses and decodes that file alone (the daemon
// keeps one for its source).
//
// An entry is a file that declares servers and nothing else and that
// loaded without a diagnostic, under its name and the SHA-256 of its
// content. A load takes a file's servers from the cache instead of parsing
// it when, besides name and content:
//
//   - what the servers were evaluated with is the same: the values of
//     every variable and local, the providers (their names and types), and
//     whether the load is strict about secrets;
//   - what their functions read from outside the file reads the same now:
//     each secret(), env(), file(), fileexists() and templatefile() they
//     called, and each version constraint resolved.
//
// Everything that spans files is computed again on every load, over all of
// them: variables, locals, providers, the tend, window and notify blocks,
// duplicate names, references between servers, pins, cycles and ports.
//
// The servers of an entry are shared by every Config loaded with the
// cache: such a Config, and its servers, must not be changed (the engine
// copies a server before it changes one). A Cache is safe for use by
// several loaders at once; it keeps the files of the latest load only.
type Cache struct {
	mu    sync.Mutex
	files map[string]*cachedFile // by file name, as diagnostics name it
}

// NewCache returns an empty cache.
func NewCache() *Cache { return &Cache{files: map[string]*cachedFile{}} }

// cachedFile is what a file declared.
type cachedFile struct {
	filename string
	sum      [sha256.Size]byte
	env      *evalEnv
	servers  []*Server
	sites    []secretSite // its secret() calls, when the load was not strict
	deps     []dep
}

// evalEnv is what servers are evaluated with, besides their own file.
type evalEnv struct {
	strict      bool
	vars, local cty.Value
	providers   string // "TYPE.NAME=TYPE", sorted
}

func (e *evalEnv) equal(o *evalEnv) bool {
	return e == o || e.strict == o.strict && e.providers == o.providers &&
		e.vars.RawEquals(o.vars) && e.local.RawEquals(o.local)
}

// evalEnvOf is d's environment for servers, once the blocks they are
// evaluated with are decoded; nil without a cache.
func (c *Cache) evalEnvOf(d *decoder) *evalEnv {
	if c == nil {
		return nil
	}
	provs := make([]string, 0, len(d.cfg.Providers))
	for k, p := range d.cfg.Providers {
		provs = append(provs, k+"="+p.Type)
	}
	sort.Strings(provs)
	val := func(name string) cty.Value {
		if v, ok := d.ctx.Variables[name]; ok {
			return v
		}
		return cty.NilVal
	}
	return &evalEnv{strict: d.opts.Strict, vars: val("var"), local: val("local"), providers: strings.Join(provs, ",")}
}

// lookup returns the entry of a file with this name and content.
func (c *Cache) lookup(filename string, sum [sha256.Size]byte) *cachedFile {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if f := c.files[filename]; f != nil && f.sum == sum {
		return f
	}
	return nil
}

// usable reports whether f's servers are what decoding the file again
// would give under env and d's options: what the file was evaluated with
// and what it read are the same. Secrets that it found unset are unset in
// this load too, for the warnings at their calls.
func (c *Cache) usable(f *cachedFile, env *evalEnv, d *decoder) bool {
	c.mu.Lock()
	was := f.env
	c.mu.Unlock()
	if !was.equal(env) {
		return false
	}
	var unset []string
	for _, dp := range f.deps {
		now := dp.read(d)
		if now != dp.val {
			return false
		}
		if dp.kind == depSecret && now == unsetSecret {
			unset = append(unset, dp.name)
		}
	}
	for _, name := range unset {
		d.fe.markUnresolved(name)
	}
	c.mu.Lock()
	f.env = env // the next file decoded with env compares pointers
	c.mu.Unlock()
	return true
}

// update replaces the entries with those of the latest load: the files it
// decoded (pending) and the entries it used; the entries of files that are
// gone or changed are dropped.
func (c *Cache) update(ins []input, sums [][sha256.Size]byte, pending []*cachedFile) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	next := make(map[string]*cachedFile, len(ins))
	for i, in := range ins {
		if f := c.files[in.filename]; f != nil && !in.unreadable && f.sum == sums[i] {
			next[in.filename] = f
		}
	}
	for _, f := range pending {
		next[f.filename] = f
	}
	c.files = next
}

// Kinds of what a function reads from outside the file.
const (
	depSecret = iota
	depEnv
	depFile
	depVersion
	depLock
)

// unsetSecret is the reading of a secret that is not set.
const unsetSecret = "unset"

// dep is one reading from outside the file: a secret, an environment
// variable, a file of the repository, a resolved version constraint, and
// what it read (a digest for a secret or a file).
type dep struct {
	kind       int
	name       string              // the secret, variable, file or server
	constraint *semver.Constraints // depVersion: the constraint resolved
	val        string
}

// read reads dp again, as a load would now.
func (dp dep) read(d *decoder) string {
	fe := d.fe
	switch dp.kind {
	case depSecret:
		return fe.readSecret(dp.name)
	case depEnv:
		return readEnv(fe.environ, dp.name)
	case depFile:
		return readFileSum(fe.readFile(dp.name))
	case depVersion:
		if d.opts.ResolveVersion == nil {
			return "no resolver"
		}
		return readVersion(d.opts.ResolveVersion(dp.name, dp.constraint))
	case depLock:
		return d.readLocked(dp.name)
	}
	return ""
}

// depRecorder collects the readings of one file's decode.
type depRecorder struct {
	mu   sync.Mutex
	seen map[dep]bool
}

func (r *depRecorder) add(dp dep) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.seen == nil {
		r.seen = map[dep]bool{}
	}
	r.seen[dp] = true
}

// list returns the readings in a stable order.
func (r *depRecorder) list() []dep {
	if r == nil {
		return nil
	}
	out := make([]dep, 0, len(r.seen))
	for dp := range r.seen {
		out = append(out, dp)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.kind != b.kind {
			return a.kind < b.kind
		}
		if a.name != b.name {
			return a.name < b.name
		}
		return a.constraint != nil && b.constraint != nil && a.constraint.String() < b.constraint.String()
	})
	return out
}

func digest(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func readEnv(environ func(string) (string, bool), name string) string {
	if v, ok := environ(name); ok {
		return "set " + digest([]byte(v))
	}
	return "unset"
}

func readFileSum(b []byte, err error) string {
	if err != nil {
		return "error: " + err.Error()
	}
	return "digest " + digest(b)
}

func readVersion(v string, err error) string {
	if err != nil {
		return "error: " + err.Error()
	}
	return "version " + v
}
