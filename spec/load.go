package spec

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/Masterminds/semver/v3"
	"github.com/hashicorp/hcl/v2"
)

// EnvironmentsDir is the folder of a state repository that holds one
// variable-values file per environment (environments/NAME.hcl). It is not
// read as part of the desired state.
const EnvironmentsDir = "environments"

// Options change how a repository is loaded.
type Options struct {
	// Env names the environment whose values file (environments/ENV.hcl)
	// supplies variable values.
	Env string
	// Vars are values given on the command line (--var NAME=VALUE). A value
	// is taken as a string for string variables and as an HCL expression
	// otherwise.
	Vars map[string]string
	// Environ looks up the reconciler's environment: env() and TEND_VAR_*.
	// os.LookupEnv when nil.
	Environ func(string) (string, bool)
	// Secrets resolves secret(). EnvSecrets{} when nil.
	Secrets SecretSource
	// Strict makes a secret that cannot be resolved an error (apply) rather
	// than a warning (validate, plan of the structure).
	Strict bool
	// ResolveVersion resolves a version constraint to a version; nil leaves
	// constraints unresolved (and the values that use ${version} unknown).
	ResolveVersion func(server string, c *semver.Constraints) (string, error)
	// Unlocked leaves a version constraint unresolved (its server's Version
	// empty, the values that use ${version} unknown) instead of reading the
	// lock file: tend lock loads a repository this way. Without it and
	// without ResolveVersion, a constraint takes the version the lock file
	// (LockFileName, at the repository's root) records, and is an error at
	// its version attribute when the lock is missing, stale or broken.
	Unlocked bool
	// TendVersion is the version of the running binary, checked against
	// tend { required_version }; empty skips the check.
	TendVersion string
}

// Loader reads state repositories. After a load it keeps the files that
// its diagnostics point into, so that they can be printed with source
// snippets, and nothing else of the parse: a loaded Config does not hold
// the parsed files.
type Loader struct {
	opts  Options
	cache *Cache
	files map[string]*hcl.File
	stats LoadStats

	lock      *Lock // the lock file of the last load; nil when there is none
	lockFile  *hcl.File
	lockDiags hcl.Diagnostics
}

// Lock returns the lock file read by the last load, or nil when the
// repository has none (or the load was Unlocked).
func (l *Loader) Lock() *Lock { return l.lock }

// readLock parses the lock file's content, src nil meaning there is none.
func (l *Loader) readLock(path string, src []byte, err error) {
	l.lock, l.lockFile, l.lockDiags = nil, nil, nil
	switch {
	case l.opts.Unlocked || l.opts.ResolveVersion != nil:
	case err != nil && !os.IsNotExist(err):
		l.lockDiags = readFailed(path)
	case src != nil:
		l.lock, l.lockFile, l.lockDiags = ParseLock(src, path)
	}
}

// NewLoader returns a Loader with the given options.
func NewLoader(opts Options) *Loader {
	if opts.Environ == nil {
		opts.Environ = os.LookupEnv
	}
	if opts.Secrets == nil {
		opts.Secrets = EnvSecrets{Lookup: opts.Environ}
	}
	return &Loader{opts: opts}
}

// WithCache makes the loader's loads reuse, and update, c: a file whose
// servers c holds is not parsed again while its content and everything its
// servers were evaluated with are the same (see Cache). It returns l.
func (l *Loader) WithCache(c *Cache) *Loader {
	l.cache = c
	return l
}

// Files returns, by name, the parsed files that the diagnostics of the last
// load point into, for hcl.NewDiagnosticTextWriter and diagtext.
func (l *Loader) Files() map[string]*hcl.File {
	if l.files == nil {
		return map[string]*hcl.File{}
	}
	return l.files
}

// LoadStats counts the files of the last load by what it did with them.
type LoadStats struct {
	Files  int // the configuration files of the repository
	Parsed int // parsed (once each, but after a file that declared other blocks than the scan expected: twice)
	Reused int // taken from the cache without parsing
}

// Stats reports on the last load.
func (l *Loader) Stats() LoadStats { return l.stats }

// Load reads the repository at dir with the given options.
func Load(dir string, opts Options) (*Config, map[string]*hcl.File, hcl.Diagnostics) {
	l := NewLoader(opts)
	cfg, diags := l.LoadDir(dir)
	return cfg, l.Files(), diags
}

// FindFiles lists the *.hcl files of a repository relative to dir, in a
// deterministic order: sorted by path, depth-first. Hidden folders and the
// environments folder are skipped, and so is every entry named *.hcl that
// is not a regular file (LoadDir warns about those).
func FindFiles(dir string) ([]string, error) {
	names, _, err := findFiles(dir)
	return names, err
}

// findFiles is FindFiles that also returns the entries named *.hcl it left
// out because they are not regular files.
func findFiles(dir string) (names []string, skipped []Skipped, err error) {
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if strings.HasPrefix(d.Name(), ".") && rel != "." {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() && rel == EnvironmentsDir {
			return filepath.SkipDir
		}
		if !strings.HasSuffix(d.Name(), ".hcl") || rel == LockFileName {
			return nil
		}
		if !d.Type().IsRegular() {
			skipped = append(skipped, Skipped{Path: filepath.ToSlash(rel), Mode: d.Type()})
			return nil
		}
		names = append(names, filepath.ToSlash(rel))
		return nil
	})
	sort.Strings(names)
	return names, skipped, err
}

// Skipped is an entry of a repository named like a configuration file that
// was not read, because it is not a regular file.
type Skipped struct {
	Path string      // relative to the repository, slash-separated
	Mode fs.FileMode // its type bits
}

// Warning is the diagnostic that says the entry was not read; root is the
// repository as the other diagnostics name it.
func (s Skipped) Warning(root string) *hcl.Diagnostic {
	name := filepath.Join(root, filepath.FromSlash(s.Path))
	if s.Mode.IsDir() {
		return &hcl.Diagnostic{
			Severity: hcl.DiagWarning,
			Summary:  "A folder named like a configuration file",
			Detail:   fmt.Sprintf("%s is a directory: tend reads the *.hcl files inside it as it does any folder's, not the folder as a file.", name),
		}
	}
	return &hcl.Diagnostic{
		Severity: hcl.DiagWarning,
		Summary:  "Not a regular file; not read",
		Detail:   fmt.Sprintf("%s is %s, not a regular file, so it was not read: tend reads regular files only.", name, fileKind(s.Mode)),
	}
}

// fileKind names the type of a file that is not regular.
func fileKind(m fs.FileMode) string {
	switch {
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe (FIFO)"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeDevice != 0:
		return "a device"
	case m.IsDir():
		return "a directory"
	}
	return "not a regular file"
}

// LoadDir reads every *.hcl file under dir.
func (l *Loader) LoadDir(dir string) (*Config, hcl.Diagnostics) {
	l.files, l.stats = nil, LoadStats{}
	st, err := os.Stat(dir)
	if err != nil || !st.IsDir() {
		return nil, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Cannot read the state repository",
			Detail:   fmt.Sprintf("%s is not a readable directory.", dir),
		}}
	}
	names, skipped, err := findFiles(dir)
	if err != nil {
		return nil, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Cannot read the state repository", Detail: err.Error()}}
	}
	var diags hcl.Diagnostics
	for _, s := range skipped {
		diags = append(diags, s.Warning(dir))
	}
	if len(names) == 0 {
		return nil, append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "No configuration files",
			Detail:   fmt.Sprintf("%s holds no .hcl files: a state repository describes its servers in *.hcl files.", dir),
		})
	}
	lockPath := filepath.Join(dir, LockFileName)
	lockSrc, err := os.ReadFile(lockPath)
	l.readLock(lockPath, lockSrc, err)
	ins := make([]input, len(names))
	for i, n := range names {
		fn := filepath.Join(dir, filepath.FromSlash(n))
		src, err := os.ReadFile(fn)
		ins[i] = input{filename: fn, src: src, unreadable: err != nil}
	}
	var envFile *hcl.File
	var envDiags hcl.Diagnostics
	if l.opts.Env != "" {
		envFile, envDiags = l.envFile(nil, filepath.Join(dir, EnvironmentsDir, l.opts.Env+".hcl"), nil)
	}
	fe := func() *funcEnv {
		return &funcEnv{root: dir, environ: l.opts.Environ, secrets: l.opts.Secrets, strict: l.opts.Strict}
	}
	cfg, d := l.load(dir, names, ins, envFile, envDiags, fe)
	return cfg, secretDiags(append(diags, d...))
}

// LoadFiles reads an in-memory repository: names are slash-separated paths
// relative to root, which is used only for file names in diagnostics.
func (l *Loader) LoadFiles(root string, files map[string][]byte) (*Config, hcl.Diagnostics) {
	l.files, l.stats = nil, LoadStats{}
	var names []string
	for n := range files {
		if strings.HasSuffix(n, ".hcl") && !strings.HasPrefix(n, EnvironmentsDir+"/") && n != LockFileName {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	lockPath := filepath.Join(root, LockFileName)
	l.readLock(lockPath, files[LockFileName], nil)
	ins := make([]input, len(names))
	for i, n := range names {
		ins[i] = input{filename: filepath.Join(root, filepath.FromSlash(n)), src: files[n]}
	}
	var envFile *hcl.File
	var envDiags hcl.Diagnostics
	if l.opts.Env != "" {
		envFile, envDiags = l.envFile(nil, filepath.Join(root, EnvironmentsDir, l.opts.Env+".hcl"), files[EnvironmentsDir+"/"+l.opts.Env+".hcl"])
	}
	fe := func() *funcEnv {
		return &funcEnv{root: root, files: files, environ: l.opts.Environ, secrets: l.opts.Secrets, strict: l.opts.Strict}
	}
	cfg, d := l.load(root, names, ins, envFile, envDiags, fe)
	return cfg, secretDiags(d)
}

// secretDiags words the error of a secret that is not set (in a strict
// load: plan, apply) as what it is, instead of HCL's "Invalid function
// argument"; the position is the secret() call.
func secretDiags(diags hcl.Diagnostics) hcl.Diagnostics {
	for _, d := range diags {
		if d.Severity != hcl.DiagError || d.Summary != "Invalid function argument" {
			continue
		}
		if rest, ok := strings.CutPrefix(d.Detail, `Invalid value for "name" parameter: secret `); ok && strings.Contains(rest, notSetMarker) {
			d.Summary = "Secret not set"
			d.Detail = "The secret " + rest
		}
	}
	return diags
}

// envFile parses an environment's values file; src nil means read it from disk.
func (l *Loader) envFile(diags hcl.Diagnostics, path string, src []byte) (*hcl.File, hcl.Diagnostics) {
	if !validEnvironmentName(l.opts.Env) {
		return nil, append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Invalid environment name",
			Detail:   fmt.Sprintf("%q is not an environment name: use letters, digits, '-', '_' and '.', not starting with '.'.", l.opts.Env),
		})
	}
	var f *hcl.File
	var d hcl.Diagnostics
	if src != nil {
		f, d = parseFile(src, path)
	} else if st, err := os.Stat(path); err == nil {
		if !st.Mode().IsRegular() {
			return nil, append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Unreadable environment",
				Detail:   fmt.Sprintf("The values file of the environment %q, %s, is %s: tend reads regular files only.", l.opts.Env, path, fileKind(st.Mode())),
			})
		}
		if src, err := os.ReadFile(path); err != nil {
			d = readFailed(path)
		} else {
			f, d = parseFile(src, path)
		}
	} else {
		return nil, append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Unknown environment",
			Detail:   fmt.Sprintf("The environment %q has no values file: %s does not exist.", l.opts.Env, path),
		})
	}
	return f, append(diags, d...)
}

func validEnvironmentName(s string) bool {
	if s == "" || s[0] == '.' || len(s) > 100 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// rootSchema is the set of top-level blocks.
var rootSchema = &hcl.BodySchema{
	Blocks: []hcl.BlockHeaderSchema{
		{Type: "tend"},
		{Type: "variable", LabelNames: []string{"name"}},
		{Type: "locals"},
		{Type: "provider", LabelNames: []string{"type", "name"}},
		{Type: "server", LabelNames: []string{"name"}},
		{Type: "window", LabelNames: []string{"name"}},
		{Type: "notify", LabelNames: []string{"name"}},
		{Type: "approval", LabelNames: []string{"name"}},
	},
}

// decoder holds the state of one decode.
type decoder struct {
	opts  Options
	cfg   *Config
	ctx   *hcl.EvalContext
	fe    *funcEnv
	diags hcl.Diagnostics

	constraints map[string]*semver.Constraints

	lock       *Lock // the repository's lock file, nil when it has none
	lockBroken bool  // the lock file has errors
}

func (d *decoder) errorf(rng *hcl.Range, summary, detail string, args ...any) {
	d.diags = append(d.diags, &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  summary,
		Detail:   fmt.Sprintf(detail, args...),
		Subject:  rng,
	})
}

func (d *decoder) warnf(rng *hcl.Range, summary, detail string, args ...any) {
	d.diags = append(d.diags, &hcl.Diagnostic{
		Severity: hcl.DiagWarning,
		Summary:  summary,
		Detail:   fmt.Sprintf(detail, args...),
		Subject:  rng,
	})
}

// blockContent decodes a block's body against its schema and tells r which
// attributes of it are required, so that an explicit null is reported.
func (d *decoder) blockContent(r *reader, body hcl.Body, schema *hcl.BodySchema) *hcl.BodyContent {
	c, diags := body.Content(schema)
	d.diags = append(d.diags, diags...)
	r.required = requiredNames(schema)
	return c
}

var requiredCache sync.Map // *hcl.BodySchema → map[string]bool

func requiredNames(schema *hcl.BodySchema) map[string]bool {
	if m, ok := requiredCache.Load(schema); ok {
		return m.(map[string]bool)
	}
	m := map[string]bool{}
	for _, a := range schema.Attributes {
		if a.Required {
			m[a.Name] = true
		}
	}
	requiredCache.Store(schema, m)
	return m
}

func (d *decoder) reader(ctx *hcl.EvalContext) *reader {
	if d.constraints == nil {
		d.constraints = map[string]*semver.Constraints{}
	}
	return &reader{ctx: ctx, diags: &d.diags, constraints: d.constraints}
}

// duplicate reports a second declaration of the same name.
func (d *decoder) duplicate(kind, name string, b *hcl.Block, first hcl.Range) {
	d.duplicateAt(kind, name, b.DefRange, first)
}

// duplicateAt is duplicate for a declaration whose block is not at hand
// (a server from the cache): at is its DefRange.
func (d *decoder) duplicateAt(kind, name string, at, first hcl.Range) {
	d.errorf(at.Ptr(), "Duplicate "+kind+" "+fmt.Sprintf("%q", name),
		"A %s named %q was already declared at %s. Names must be unique across all files of the repository.", kind, name, first.String())
}

// reportUnresolvedSecrets warns, at each call site, about secrets that could
// not be resolved while validating.
func (d *decoder) reportUnresolvedSecrets(sites []secretSite) {
	if len(d.fe.unresolved) == 0 {
		return
	}
	for _, site := range sites {
		if d.fe.unresolved[site.name] {
			rng := site.rng
			d.warnf(&rng, "Secret not available",
				"The secret %q cannot be resolved here: set %s or put a file %q in the secrets directory. Validation goes on, but apply will fail until it is set.", site.name, SecretEnvName(site.name), site.name)
		}
	}
}
