package spec

import (
	"bytes"
	"crypto/sha256"
	"fmt"

	"github.com/Masterminds/semver/v3"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// A load decodes the blocks that the whole repository shares first, then
// the servers file by file, and lets go of each file's syntax tree once its
// servers are decoded; the trees are most of what a load allocates (about
// 17 KB a server, against 3 KB for the decoded server), so a fleet's load
// no longer holds all of them at once.
//
// Servers are evaluated with the variables, locals and providers, which
// any file may declare. So the files that may declare such blocks are
// parsed first: a scan of each file's text (mayDeclareOthers) picks them.
// The scan is a guess that only orders the work: a file it passed over
// that turns out to declare such a block makes the load start again with
// every file parsed up front, as if the scan had picked them all.
//
// The diagnostics come out in the order they always have: every file's
// parse problems in file order, the environment file's, every file's
// top-level problems, then the decode's, block kind by block kind.

// input is one configuration file of a load.
type input struct {
	filename   string // as diagnostics name it
	src        []byte
	unreadable bool
}

// parseFile parses one configuration file.
func parseFile(src []byte, filename string) (*hcl.File, hcl.Diagnostics) {
	return hclsyntax.ParseConfig(src, filename, hcl.InitialPos)
}

// readFailed is the diagnostic of a file that could not be read, worded as
// hclparse words it.
func readFailed(filename string) hcl.Diagnostics {
	return hcl.Diagnostics{{
		Severity: hcl.DiagError,
		Summary:  "Failed to read file",
		Detail:   fmt.Sprintf("The configuration file %q could not be read.", filename),
	}}
}

// otherBlockTypes are the top-level block types besides server.
var otherBlockTypes = [][]byte{[]byte("tend"), []byte("variable"), []byte("locals"), []byte("provider"), []byte("window"), []byte("notify"), []byte("approval")}

// mayDeclareOthers reports whether src may declare a top-level block other
// than server: whether a line starts, after blanks, with one of their type
// names followed by something other than "=" (which would make it an
// attribute). It errs on the side of yes; a no that is wrong is caught
// after the parse.
func mayDeclareOthers(src []byte) bool {
	for len(src) > 0 {
		line := src
		if i := bytes.IndexByte(src, '\n'); i >= 0 {
			line, src = src[:i], src[i+1:]
		} else {
			src = nil
		}
		line = bytes.TrimLeft(line, " \t")
		if len(line) == 0 || !bytes.ContainsRune([]byte("tvlpwna"), rune(line[0])) {
			continue
		}
		for _, t := range otherBlockTypes {
			rest, ok := bytes.CutPrefix(line, t)
			if !ok || len(rest) > 0 && isIdentByte(rest[0]) {
				continue
			}
			rest = bytes.TrimLeft(rest, " \t\r")
			if len(rest) > 0 && rest[0] != '=' {
				return true
			}
		}
	}
	return false
}

func isIdentByte(c byte) bool {
	return c == '_' || c == '-' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c >= 0x80
}

// loadState is what one attempt at a load keeps per file.
type loadState struct {
	ins     []input
	parse   []hcl.Diagnostics // the parse's, per file
	content []hcl.Diagnostics // the top-level schema's, per file
	files   []*hcl.File       // parsed and still needed
	servers [][]*hcl.Block    // the server blocks, per parsed file
	others  []bool            // the file declares other blocks than servers
	parsed  []bool
	sites   [][]secretSite // the secret() calls, per file, when a load is not strict
	sums    [][sha256.Size]byte
	cached  []*cachedFile
	blocks  map[string][]*hcl.Block // the other blocks, in file order
	first   map[string]int          // the first file of each name
	nParsed int
}

// parseOne parses file i and sorts its top-level blocks: the server blocks
// by file, the others by type in file order.
func (st *loadState) parseOne(i int) {
	st.parsed[i] = true
	in := st.ins[i]
	if in.unreadable {
		st.parse[i] = readFailed(in.filename)
		return
	}
	var f *hcl.File
	if j := st.first[in.filename]; j != i && st.files[j] != nil {
		f = st.files[j] // a second name for one file: its tree, as hclparse gave it
	} else {
		st.nParsed++
		f, st.parse[i] = parseFile(in.src, in.filename)
	}
	st.files[i] = f
	content, diags := f.Body.Content(rootSchema)
	st.content[i] = diags
	for _, b := range content.Blocks {
		if b.Type == "server" {
			st.servers[i] = append(st.servers[i], b)
			continue
		}
		st.others[i] = true
		st.blocks[b.Type] = append(st.blocks[b.Type], b)
	}
}

// load decodes the files of a repository; names are their paths relative
// to root, ins the files themselves. newFuncEnv makes the functions'
// environment afresh for each attempt.
func (l *Loader) load(root string, names []string, ins []input, envFile *hcl.File, envDiags hcl.Diagnostics, newFuncEnv func() *funcEnv) (*Config, hcl.Diagnostics) {
	seen := make(map[string]bool, len(ins))
	all := false
	for _, in := range ins {
		// Two names for one file (a/../b.hcl and b.hcl) would be decoded
		// from the first one's tree, as hclparse did; do so up front.
		all = all || seen[in.filename]
		seen[in.filename] = true
	}
	cfg, diags, st, ok := l.loadOnce(root, names, ins, envFile, envDiags, newFuncEnv(), all)
	parsed := st.nParsed
	if !ok {
		cfg, diags, st, _ = l.loadOnce(root, names, ins, envFile, envDiags, newFuncEnv(), true)
		parsed += st.nParsed
	}
	l.stats = LoadStats{Files: len(ins), Parsed: parsed}
	for _, c := range st.cached {
		if c != nil {
			l.stats.Reused++
		}
	}
	diags = append(l.lockDiags, diags...)
	l.keepFiles(st, envFile, diags)
	if l.lockFile != nil {
		l.files[l.lock.Filename] = l.lockFile
	}
	return cfg, diags
}

// loadOnce is one attempt at a load: all parses every file before decoding
// any. It reports false when a file that the scan passed over declared
// other blocks than servers.
func (l *Loader) loadOnce(root string, names []string, ins []input, envFile *hcl.File, envDiags hcl.Diagnostics, fe *funcEnv, all bool) (*Config, hcl.Diagnostics, *loadState, bool) {
	n := len(ins)
	st := &loadState{
		ins: ins, parse: make([]hcl.Diagnostics, n), content: make([]hcl.Diagnostics, n),
		files: make([]*hcl.File, n), servers: make([][]*hcl.Block, n), others: make([]bool, n),
		parsed: make([]bool, n), sites: make([][]secretSite, n), cached: make([]*cachedFile, n),
		blocks: map[string][]*hcl.Block{}, first: make(map[string]int, n),
	}
	for i := n - 1; i >= 0; i-- {
		st.first[ins[i].filename] = i
	}
	if l.cache != nil {
		st.sums = make([][sha256.Size]byte, n)
		for i, in := range ins {
			if !in.unreadable {
				st.sums[i] = sha256.Sum256(in.src)
				if !all {
					st.cached[i] = l.cache.lookup(in.filename, st.sums[i])
				}
			}
		}
	}
	// The files that may declare what every server is evaluated with.
	for i, in := range ins {
		if all || st.cached[i] == nil && (in.unreadable || mayDeclareOthers(in.src)) {
			st.parseOne(i)
		}
	}
	d := &decoder{
		opts: l.opts,
		fe:   fe,
		cfg: &Config{
			Dir:       root,
			Env:       l.opts.Env,
			Files:     names,
			Variables: map[string]*Variable{},
			Locals:    map[string]cty.Value{},
			Providers: map[string]*Provider{},
			Servers:   map[string]*Server{},
			Windows:   map[string]*Window{},
			Notifies:  map[string]*Notify{},
			Approvals: map[string]*Approval{},
		},
	}
	d.ctx = &hcl.EvalContext{Functions: fe.functions(), Variables: map[string]cty.Value{}}
	d.lock, d.lockBroken = l.lock, l.lockDiags.HasErrors()
	if rv := d.opts.ResolveVersion; rv != nil && l.cache != nil {
		// A resolved version is a reading from outside the file.
		d.opts.ResolveVersion = func(server string, c *semver.Constraints) (string, error) {
			v, err := rv(server, c)
			fe.deps.add(dep{kind: depVersion, name: server, constraint: c, val: readVersion(v, err)})
			return v, err
		}
	}
	d.decodeTend(st.blocks["tend"])
	d.decodeVariables(st.blocks["variable"], envFile)
	d.decodeLocals(st.blocks["locals"])
	d.decodeTendSettings(st.blocks["tend"])
	d.decodeProviders(st.blocks["provider"])

	var pending []*cachedFile
	env := l.cache.evalEnvOf(d)
	for i := range ins {
		if c := st.cached[i]; c != nil {
			if l.cache.usable(c, env, d) {
				d.addServers(c.servers)
				st.sites[i] = c.sites
				continue
			}
			st.cached[i] = nil
		}
		if !st.parsed[i] {
			st.parseOne(i)
			if st.others[i] {
				return nil, nil, st, false
			}
		}
		if c := l.decodeFile(d, st, i, env); c != nil {
			pending = append(pending, c)
		}
	}
	d.decodeWindows(st.blocks["window"])
	d.decodeNotifies(st.blocks["notify"])
	d.decodeTopApprovals(st.blocks["approval"])
	d.validate()
	d.checkUpdates()
	d.checkLockEntries()
	d.checkBlockVulnerable()
	var sites []secretSite
	for _, s := range st.sites {
		sites = append(sites, s...)
	}
	d.reportUnresolvedSecrets(sites)

	var diags hcl.Diagnostics
	for _, p := range st.parse {
		diags = append(diags, p...)
	}
	diags = append(diags, envDiags...)
	for _, c := range st.content {
		diags = append(diags, c...)
	}
	diags = append(diags, d.diags...)
	l.cache.update(ins, st.sums, pending)
	return d.cfg, diags, st, true
}

// decodeFile decodes the servers of file i, and lets go of its syntax tree
// when nothing points into it. It returns what the cache may keep of the
// file: only a file of servers alone that decoded without a diagnostic.
func (l *Loader) decodeFile(d *decoder, st *loadState, i int, env *evalEnv) *cachedFile {
	var rec *depRecorder
	if l.cache != nil {
		rec = &depRecorder{}
		d.fe.deps = rec
	}
	mark := len(d.diags)
	d.decodeServers(st.servers[i])
	d.fe.deps = nil
	if f := st.files[i]; f != nil && !d.fe.strict && bytes.Contains(st.ins[i].src, []byte("secret")) {
		st.sites[i] = secretCallSites(f)
	}
	if st.others[i] || st.ins[i].unreadable || len(st.parse[i]) > 0 || len(st.content[i]) > 0 || len(d.diags) > mark {
		// The tree stays for the snippets of its diagnostics, or of the
		// window and notify blocks, which are decoded last.
		return nil
	}
	if l.cache == nil {
		st.files[i], st.servers[i] = nil, nil
		return nil
	}
	// Without a diagnostic, every block gave a server.
	servers := make([]*Server, len(st.servers[i]))
	for j, b := range st.servers[i] {
		servers[j] = d.cfg.Servers[b.Labels[0]]
	}
	st.files[i], st.servers[i] = nil, nil
	return &cachedFile{
		filename: st.ins[i].filename, sum: st.sums[i], env: env,
		servers: servers, sites: st.sites[i], deps: rec.list(),
	}
}

// addServers adds servers decoded from one file before (taken from the
// cache), reporting a name already declared as decodeServers does.
func (d *decoder) addServers(servers []*Server) {
	for _, s := range servers {
		if prev, ok := d.cfg.Servers[s.Name]; ok {
			d.duplicateAt("server", s.Name, s.DeclRange, prev.DeclRange)
			continue
		}
		d.cfg.Servers[s.Name] = s
	}
}

// keepFiles keeps the files the diagnostics point into, parsing again a
// file whose tree was let go of (or that came from the cache), and the
// environment file.
func (l *Loader) keepFiles(st *loadState, envFile *hcl.File, diags hcl.Diagnostics) {
	byName := make(map[string]int, len(st.ins))
	for i, in := range st.ins {
		if _, dup := byName[in.filename]; !dup {
			byName[in.filename] = i
		}
	}
	l.files = map[string]*hcl.File{}
	keep := func(r *hcl.Range) {
		if r == nil {
			return
		}
		if _, done := l.files[r.Filename]; done {
			return
		}
		if envFile != nil && r.Filename == envFile.Body.MissingItemRange().Filename {
			l.files[r.Filename] = envFile
			return
		}
		i, ok := byName[r.Filename]
		if !ok || st.ins[i].unreadable {
			return
		}
		if f := st.files[i]; f != nil {
			l.files[r.Filename] = f
			return
		}
		f, _ := parseFile(st.ins[i].src, st.ins[i].filename)
		l.files[r.Filename] = f
	}
	for _, d := range diags {
		keep(d.Subject)
		keep(d.Context)
	}
}
