package spec

import (
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/Masterminds/semver/v3"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// Defaults of a server.
const (
	DefaultVerifyFor        = 30 * time.Second
	DefaultProgressDeadline = 5 * time.Minute
	DefaultFailAfter        = 3
	DefaultCheckInterval    = 5 * time.Second
	DefaultCheckTimeout     = 2 * time.Second
	DefaultHookTimeout      = 10 * time.Minute
	DefaultReloadTimeout    = 30 * time.Second
	DefaultScaleDownWindow  = 5 * time.Minute
)

var serverSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "provider"}, {Name: "version", Required: true},
		{Name: "image"}, {Name: "command"}, {Name: "args"}, {Name: "work_dir"}, {Name: "user"},
		{Name: "replicas"}, {Name: "port"}, {Name: "ports"}, {Name: "env"},
		{Name: "labels"}, {Name: "selector"}, {Name: "depends_on"},
		{Name: "contract"}, {Name: "contract_capabilities"}, {Name: "drift_check"}, {Name: "self_heal"}, {Name: "block_vulnerable"},
	},
	Blocks: []hcl.BlockHeaderSchema{
		{Type: "artifact"}, {Type: "config_file", LabelNames: []string{"path"}},
		{Type: "resources"}, {Type: "volume", LabelNames: []string{"name"}},
		{Type: "requires", LabelNames: []string{"server"}}, {Type: "check", LabelNames: []string{"name"}},
		{Type: "rollout"}, {Type: "hooks"}, {Type: "scaling"}, {Type: "backup"}, {Type: "release"},
		{Type: "reload"}, {Type: "update"}, {Type: "approval"}, {Type: "promotion"},
	},
}

var singleBlocks = []string{"artifact", "resources", "rollout", "hooks", "scaling", "backup", "release", "reload", "update"}

var (
	artifactSchema   = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "url", Required: true}, {Name: "sha256", Required: true}, {Name: "extract"}}}
	configFileSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "content", Required: true}, {Name: "mode"}}}
	resourcesSchema  = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "cpu"}, {Name: "memory"}}}
	volumeSchema     = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "path", Required: true}, {Name: "size"}, {Name: "source"}}}
	requiresSchema   = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "version", Required: true}}}
	checkSchema      = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{{Name: "interval"}, {Name: "timeout"}, {Name: "initial_delay"}, {Name: "success_threshold"}, {Name: "failure_threshold"}},
		Blocks:     []hcl.BlockHeaderSchema{{Type: CheckHTTP}, {Type: CheckTCP}, {Type: CheckExec}, {Type: CheckMCP}},
	}
	httpCheckSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
		{Name: "port"}, {Name: "path"}, {Name: "method"}, {Name: "scheme"}, {Name: "headers"},
		{Name: "status"}, {Name: "body_contains"}, {Name: "body_regex"},
	}}
	tcpCheckSchema  = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "port"}}}
	execCheckSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "command", Required: true}}}
	mcpCheckSchema  = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{
			{Name: "port"}, {Name: "path"}, {Name: "transport"}, {Name: "protocol_version"}, {Name: "check_version"},
			{Name: "tools"}, {Name: "resources"}, {Name: "prompts"}, {Name: "max_latency"}, {Name: "command"},
		},
		Blocks: []hcl.BlockHeaderSchema{{Type: "call"}},
	}
	mcpCallSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "tool", Required: true}, {Name: "arguments"}, {Name: "expect"}}}
	rolloutSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
		{Name: "strategy"}, {Name: "max_unavailable"}, {Name: "max_surge"}, {Name: "canary_steps"},
		{Name: "verify_for"}, {Name: "progress_deadline"}, {Name: "fail_after"}, {Name: "auto_rollback"}, {Name: "backup_before"},
	}}
	reloadSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
		{Name: "signal"}, {Name: "command"}, {Name: "http"}, {Name: "port"}, {Name: "timeout"},
	}}
	hooksSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
		{Name: "pre_deploy"}, {Name: "migrate"}, {Name: "post_deploy"}, {Name: "timeout"},
	}}
	scalingSchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{
			{Name: "min"}, {Name: "max", Required: true}, {Name: "cpu_percent"}, {Name: "memory_percent"},
			{Name: "scale_up_window"}, {Name: "scale_down_window"},
		},
		Blocks: []hcl.BlockHeaderSchema{{Type: "metric", LabelNames: []string{"name"}}},
	}
	metricSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "port"}, {Name: "path"}, {Name: "target", Required: true}}}
	backupSchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{
			{Name: "schedule", Required: true}, {Name: "keep"}, {Name: "paths"}, {Name: "command"}, {Name: "destination"},
			{Name: "restore_command"}, {Name: "drill"}, {Name: "encryption_key"}, {Name: "read_only"}, {Name: "timeout"},
		},
		Blocks: []hcl.BlockHeaderSchema{{Type: "s3"}},
	}
	backupS3Schema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
		{Name: "endpoint"}, {Name: "region"}, {Name: "access_key"}, {Name: "secret_key"}, {Name: "path_style"},
	}}
)

func (d *decoder) decodeServers(blocks []*hcl.Block) {
	for _, b := range blocks {
		name := b.Labels[0]
		if !validName(name) {
			d.errorf(b.LabelRanges[0].Ptr(), "Invalid server name", "%q is not a valid server name: %s", name, nameRule)
			continue
		}
		if prev, ok := d.cfg.Servers[name]; ok {
			d.duplicate("server", name, b, prev.DeclRange)
			continue
		}
		if s := d.decodeServer(b); s != nil {
			d.cfg.Servers[name] = s
		}
	}
}

func (d *decoder) decodeServer(b *hcl.Block) *Server {
	r := d.reader(d.ctx)
	content := d.blockContent(r, b.Body, serverSchema)
	s := &Server{
		Name:      b.Labels[0],
		Replicas:  1,
		Contract:  "warn",
		DeclRange: b.DefRange,
	}
	at := content.Attributes
	r.unresolved = &s.Unresolved

	d.serverProvider(s, at)
	version := d.serverVersion(s, at, r)

	// The rest of the block sees version and self.
	ctx := d.ctx.NewChild()
	ctx.Variables = map[string]cty.Value{
		"version": version,
		"self":    cty.ObjectVal(map[string]cty.Value{"name": cty.StringVal(s.Name), "version": version}),
	}
	r.ctx = ctx

	r.str(at, "image", &s.Image)
	s.commandOK = r.values(at, "command", &s.Command)
	r.values(at, "args", &s.Args)
	r.str(at, "work_dir", &s.WorkDir)
	r.str(at, "user", &s.User)
	replicasSet := r.integer(at, "replicas", &s.Replicas, 0, 10000)
	d.serverPorts(s, at, r)
	r.valueMap(at, "env", &s.Env)
	d.checkEnvNames(s, at)
	r.stringMap(at, "labels", &s.Labels)
	r.stringMap(at, "selector", &s.Selector)
	r.refs(at, "depends_on", "server", &s.DependsOn)
	r.oneOf(at, "contract", &s.Contract, "enforce", "warn", "off")
	d.contractCapabilities(s, at, r)
	r.cronExpr(at, "drift_check", &s.Drift)
	var selfHeal bool
	if r.boolean(at, "self_heal", &selfHeal) {
		s.SelfHeal = &selfHeal
	}
	var blockVuln bool
	if r.boolean(at, "block_vulnerable", &blockVuln) {
		s.BlockVulnerable, s.BlockVulnerableRange = &blockVuln, at["block_vulnerable"].Expr.Range()
	}

	seen := map[string]*hcl.Block{}
	for _, blk := range content.Blocks {
		if contains(singleBlocks, blk.Type) {
			if prev, dup := seen[blk.Type]; dup {
				d.errorf(blk.DefRange.Ptr(), "Duplicate "+blk.Type+" block",
					"A server has at most one %s block; the first is at %s.", blk.Type, prev.DefRange.String())
				continue
			}
			seen[blk.Type] = blk
		}
		switch blk.Type {
		case "artifact":
			d.serverArtifact(s, blk, r)
		case "config_file":
			d.serverConfigFile(s, blk, r)
		case "resources":
			d.serverResources(s, blk, r)
		case "volume":
			d.serverVolume(s, blk, r)
		case "requires":
			d.serverRequires(s, blk, r)
		case "check":
			d.serverCheck(s, blk, r)
		case "hooks":
			d.serverHooks(s, blk, r)
		case "scaling":
			d.serverScaling(s, blk, r, replicasSet)
		case "backup":
			d.serverBackup(s, blk, r)
		case "release":
			d.serverRelease(s, blk, r)
		case "reload":
			d.serverReload(s, blk, r)
		case "update":
			s.Update = d.decodeUpdate(blk, r)
		}
	}
	s.Approval, s.Promotion = d.decodeGovernance(content.Blocks, r, "A server")
	d.inferRelease(s, at, ctx)
	d.constraintRules(s)
	d.pinLocked(s)
	d.inferPackage(s)
	d.serverRollout(s, seen["rollout"], r)
	d.checkBackupPaths(s)
	d.checkMetricPorts(s)
	d.checkReloadPort(s)
	d.serverArtifactRules(s, at)
	d.nullRules(s, content.Blocks)
	sort.Strings(s.Unresolved)
	return s
}

// ContractCapabilities are the MCP client capabilities a server's
// contract_capabilities may name.
var ContractCapabilities = []string{"elicitation", "roots", "sampling"}

// contractCapabilities decodes contract_capabilities: known capabilities,
// each once.
func (d *decoder) contractCapabilities(s *Server, at hcl.Attributes, r *reader) {
	var caps []string
	if !r.strings(at, "contract_capabilities", &caps) {
		return
	}
	expr := at["contract_capabilities"].Expr
	// The element's range when the list is written out, else the list's.
	rng := func(i int) *hcl.Range {
		if t, ok := expr.(*hclsyntax.TupleConsExpr); ok && i < len(t.Exprs) {
			return t.Exprs[i].Range().Ptr()
		}
		return expr.Range().Ptr()
	}
	ok := true
	for i, c := range caps {
		switch {
		case !contains(ContractCapabilities, c):
			d.errorf(rng(i), "Unknown client capability", "%q is not an MCP client capability tend can declare; they are %s.%s",
				c, quoteList(ContractCapabilities), didYouMean(c, ContractCapabilities))
			ok = false
		case contains(caps[:i], c):
			d.errorf(rng(i), "Duplicate client capability", "%q is listed twice.", c)
			ok = false
		}
	}
	if ok {
		sort.Strings(caps)
		s.ContractCapabilities = &caps
	}
}

// serverProvider resolves `provider = provider.TYPE.NAME`, or the default.
func (d *decoder) serverProvider(s *Server, at hcl.Attributes) {
	a, ok := at["provider"]
	if !ok {
		switch len(d.cfg.Providers) {
		case 0:
			s.Provider, s.ProviderType = DefaultProcessProvider, "process"
		case 1:
			for k, p := range d.cfg.Providers {
				s.Provider, s.ProviderType = k, p.Type
			}
		default:
			d.errorf(s.DeclRange.Ptr(), "Missing provider",
				"Several providers are declared (%s), so the server must say which one runs it: provider = provider.TYPE.NAME.", strings.Join(sortedKeys(d.cfg.Providers), ", "))
		}
		s.ProviderRange = s.DeclRange
		return
	}
	s.ProviderRange = a.Expr.Range()
	r := d.reader(nil)
	parts, ok := r.ref(a.Expr, "provider", 3)
	if !ok {
		return
	}
	key := parts[1] + "." + parts[2]
	p, ok := d.cfg.Providers[key]
	if !ok {
		if key == DefaultProcessProvider && len(d.cfg.Providers) == 0 {
			s.Provider, s.ProviderType = key, "process"
			return
		}
		d.errorf(a.Expr.Range().Ptr(), "Unknown provider",
			"No provider %q is declared.%s Declare it with provider %q %q {}.", key, didYouMean(key, sortedKeys(d.cfg.Providers)), parts[1], parts[2])
		return
	}
	s.Provider, s.ProviderType = key, p.Type
}

// serverVersion decodes version: an exact version, or a constraint that is
// resolved now (when a resolver is given) or later.
func (d *decoder) serverVersion(s *Server, at hcl.Attributes, r *reader) cty.Value {
	unknown := cty.UnknownVal(cty.String)
	var text string
	if !r.str(at, "version", &text) {
		return unknown
	}
	a := at["version"]
	s.VersionRange = a.Expr.Range()
	if v, err := semver.StrictNewVersion(strings.TrimPrefix(text, "v")); err == nil {
		s.Version = v.Original()
		if strings.HasPrefix(text, "v") {
			s.Version = text[1:]
		}
		return cty.StringVal(s.Version)
	}
	c, err := r.parseConstraint(text)
	if err != nil {
		r.attrError(a, "Invalid version",
			"%q is not a version: write MAJOR.MINOR.PATCH, such as \"1.4.2\".", text)
		return unknown
	}
	if looksLikePartialVersion(text) {
		r.attrError(a, "Invalid version",
			"%q is not a full version: write MAJOR.MINOR.PATCH (such as \"%s\").", text, fullVersion(text))
		return unknown
	}
	s.VersionConstraint, s.Constraint = text, c
	switch {
	case d.opts.Unlocked:
		return unknown
	case d.opts.ResolveVersion == nil:
		return d.lockedVersion(s, a, r)
	}
	v, err := d.opts.ResolveVersion(s.Name, c)
	if err != nil {
		r.attrError(a, "Cannot resolve version", "No version of %q satisfies %q: %v.", s.Name, text, err)
		return unknown
	}
	s.Version = v
	return cty.StringVal(v)
}

// looksLikePartialVersion is true for "1.4" or "2": semver would read them
// as constraints, but a person almost always meant a version.
func looksLikePartialVersion(s string) bool {
	parts := strings.Split(strings.TrimPrefix(s, "v"), ".")
	if len(parts) > 2 {
		return false
	}
	for _, p := range parts {
		if _, err := strconv.Atoi(p); err != nil {
			return false
		}
	}
	return true
}

func fullVersion(s string) string {
	s = strings.TrimPrefix(s, "v")
	for strings.Count(s, ".") < 2 {
		s += ".0"
	}
	return s
}

func (d *decoder) serverPorts(s *Server, at hcl.Attributes, r *reader) {
	pa, hasPort := at["port"]
	psa, hasPorts := at["ports"]
	if hasPort && hasPorts {
		d.errorf(psa.NameRange.Ptr(), "Conflicting port settings", "Use either port (one port, named \"http\") or ports (named ports), not both.")
		return
	}
	if hasPort {
		var n int
		if r.integer(at, "port", &n, 1, 65535) {
			s.Ports = []Port{{Name: "http", Number: n, Protocol: "tcp", Range: pa.Expr.Range()}}
		} else {
			s.portsFailed = true
		}
		return
	}
	if !hasPorts {
		return
	}
	v, ok := r.eval(psa)
	if !ok {
		s.portsFailed = true
		return
	}
	if !v.Type().IsObjectType() && !v.Type().IsMapType() {
		s.portsFailed = true
		r.attrError(psa, "Incorrect attribute value type", "ports must be a map of port names to numbers, such as { http = 8080, metrics = 9090 }.")
		return
	}
	byNumber := map[int]string{}
	for it := v.ElementIterator(); it.Next(); {
		k, e := it.Element()
		name := k.AsString()
		if !validName(name) || len(name) > 15 {
			r.attrError(psa, "Invalid port name", "%q is not a valid port name: lower-case letters, digits and '-', at most 15 characters.", name)
			continue
		}
		n, err := toPortNumber(e)
		if err != nil {
			r.attrError(psa, "Invalid port", "Port %q: %s.", name, err)
			continue
		}
		if other, dup := byNumber[n]; dup {
			r.attrError(psa, "Duplicate port", "Ports %q and %q both use %d.", other, name, n)
			continue
		}
		byNumber[n] = name
		s.Ports = append(s.Ports, Port{Name: name, Number: n, Protocol: "tcp", Range: psa.Expr.Range()})
	}
	sort.Slice(s.Ports, func(i, j int) bool { return s.Ports[i].Number < s.Ports[j].Number })
}

func toPortNumber(v cty.Value) (int, error) {
	if v.Type() != cty.Number {
		return 0, fmt.Errorf("a number is required, but got %s", v.Type().FriendlyName())
	}
	i, _ := v.AsBigFloat().Int64()
	f, _ := v.AsBigFloat().Float64()
	if float64(i) != f || i < 1 || i > 65535 {
		return 0, fmt.Errorf("%s is not a port number from 1 to 65535", v.AsBigFloat().Text('f', -1))
	}
	return int(i), nil
}

func (d *decoder) checkEnvNames(s *Server, at hcl.Attributes) {
	for _, k := range sortedKeys(s.Env) {
		if !validEnvName(k) {
			d.errorf(at["env"].Expr.Range().Ptr(), "Invalid environment variable name",
				"%q is not a valid environment variable name: use letters, digits and '_', not starting with a digit.", k)
		}
	}
}

func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		switch {
		case c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

func (d *decoder) serverArtifact(s *Server, b *hcl.Block, r *reader) {
	c := d.blockContent(r, b.Body, artifactSchema)
	a := &Artifact{}
	if r.str(c.Attributes, "url", &a.URL) && !validURL(a.URL) && !strings.HasPrefix(a.URL, "file://") {
		d.errorf(c.Attributes["url"].Expr.Range().Ptr(), "Invalid URL", "An artifact url must be an http://, https:// or file:// URL, not %q.", a.URL)
	}
	if r.str(c.Attributes, "sha256", &a.SHA256) && !isHex(a.SHA256, 64) {
		d.errorf(c.Attributes["sha256"].Expr.Range().Ptr(), "Invalid sha256", "sha256 must be 64 hexadecimal characters (the output of sha256sum).")
	}
	r.boolean(c.Attributes, "extract", &a.Extract)
	s.Artifact = a
}

func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// serverArtifactRules checks that the server says what to run in the form
// its provider type understands.
func (d *decoder) serverArtifactRules(s *Server, at hcl.Attributes) {
	switch s.ProviderType {
	case "docker", "kubernetes":
		if a, ok := at["image"]; !ok && !contains(s.Unresolved, "image") {
			d.errorf(s.DeclRange.Ptr(), "Missing image", "A server on the %s provider runs an image: add image = \"REGISTRY/NAME:${version}\".", s.ProviderType)
		} else if ok && s.Image != "" && strings.ContainsAny(s.Image, " \t") {
			d.errorf(a.Expr.Range().Ptr(), "Invalid image", "%q is not an image reference.", s.Image)
		}
		if s.Artifact != nil {
			d.errorf(s.DeclRange.Ptr(), "Artifact not supported", "The %s provider runs images; an artifact block is for the process and systemd providers.", s.ProviderType)
		}
	case "process", "systemd":
		if a, ok := at["image"]; ok {
			d.errorf(a.NameRange.Ptr(), "Image not supported", "The %s provider runs commands, not images: use command (and an artifact block to download a release).", s.ProviderType)
		}
		if _, ok := at["command"]; !ok {
			d.errorf(s.DeclRange.Ptr(), "Missing command", "A server on the %s provider needs a command, such as command = [\"./bin/server\", \"--port\", \"$(PORT)\"].", s.ProviderType)
		} else if s.commandOK && len(s.Command) == 0 {
			d.errorf(at["command"].Expr.Range().Ptr(), "Empty command", "command must name at least the program to run.")
		}
	case "null":
		// Nothing runs: image, command and artifact are all optional, and
		// recorded (a change of them is a change of the replicas).
		if a, ok := at["image"]; ok && strings.ContainsAny(s.Image, " \t") {
			d.errorf(a.Expr.Range().Ptr(), "Invalid image", "%q is not an image reference.", s.Image)
		}
	}
}

// nullRefusals say why a block cannot be used on the null provider, whose
// replicas are records: no process answers, runs or reports anything.
var nullRefusals = map[string]string{
	"check":   "A check probes a running replica, and a replica of the null provider is a record with no process or address: nothing would answer it, so no change could ever be verified. Remove the check; without checks a null replica is verified once it is recorded.",
	"hooks":   "Hooks run a command beside the server, and the null provider runs nothing. Remove the hooks block.",
	"scaling": "tend scales a server on what its replicas report (CPU, memory, a metric), and a replica of the null provider reports nothing. Remove the scaling block, or set replicas.",
	"reload":  "A reload makes a running replica read its config files again, and a replica of the null provider is a record that runs nothing. Remove the reload block.",
	"backup":  "A backup copies a replica's data out (or runs a backup command), and a replica of the null provider has no data and runs nothing. Remove the backup block.",
}

// nullRules refuses the blocks that need a running replica on a server of
// the null provider.
func (d *decoder) nullRules(s *Server, blocks hcl.Blocks) {
	if s.ProviderType != "null" {
		return
	}
	for _, b := range blocks {
		if why, ok := nullRefusals[b.Type]; ok {
			d.errorf(b.DefRange.Ptr(), strings.ToUpper(b.Type[:1])+b.Type[1:]+" not supported on null", "%s", why)
		}
	}
}

func (d *decoder) serverConfigFile(s *Server, b *hcl.Block, r *reader) {
	p := b.Labels[0]
	if p == "" || p == "." || p == "/" || strings.Contains(p, "\x00") || path.Clean(p) != p || strings.HasPrefix(p, "../") || p == ".." {
		d.errorf(b.LabelRanges[0].Ptr(), "Invalid config file path", "%q is not a clean file path: write an absolute path, or one relative to the replica's working directory, without \"..\".", p)
		return
	}
	for _, f := range s.ConfigFiles {
		if f.Path == p {
			d.errorf(b.LabelRanges[0].Ptr(), "Duplicate config file", "The config file %q is already declared at %s.", p, f.DeclRange.String())
			return
		}
	}
	c := d.blockContent(r, b.Body, configFileSchema)
	f := &ConfigFile{Path: p, Mode: 0o644, DeclRange: b.DefRange}
	r.value(c.Attributes, "content", &f.Content)
	var mode string
	if r.str(c.Attributes, "mode", &mode) {
		m, err := strconv.ParseUint(mode, 8, 32)
		if err != nil || m > 0o777 {
			d.errorf(c.Attributes["mode"].Expr.Range().Ptr(), "Invalid file mode", "mode must be an octal permission string such as \"0640\", not %q.", mode)
		} else {
			f.Mode = uint32(m)
		}
	}
	if f.Content.IsSensitive() && f.Mode&0o077 != 0 {
		// A file holding a secret is readable by its owner only.
		f.Mode &^= 0o077
	}
	s.ConfigFiles = append(s.ConfigFiles, f)
}

func (d *decoder) serverResources(s *Server, b *hcl.Block, r *reader) {
	c := d.blockContent(r, b.Body, resourcesSchema)
	res := &Resources{}
	r.cpu(c.Attributes, "cpu", &res.MilliCPU)
	r.size(c.Attributes, "memory", &res.MemoryBytes)
	s.Resources = res
}

func (d *decoder) serverVolume(s *Server, b *hcl.Block, r *reader) {
	name := b.Labels[0]
	if !validName(name) {
		d.errorf(b.LabelRanges[0].Ptr(), "Invalid volume name", "%q is not a valid volume name: %s", name, nameRule)
		return
	}
	c := d.blockContent(r, b.Body, volumeSchema)
	v := &Volume{Name: name, DeclRange: b.DefRange}
	if r.str(c.Attributes, "path", &v.Path) && (!path.IsAbs(v.Path) || path.Clean(v.Path) != v.Path) {
		d.errorf(c.Attributes["path"].Expr.Range().Ptr(), "Invalid volume path", "A volume path must be a clean absolute path such as \"/data\", not %q.", v.Path)
	}
	r.size(c.Attributes, "size", &v.SizeBytes)
	r.str(c.Attributes, "source", &v.Source)
	for _, o := range s.Volumes {
		if o.Name == v.Name {
			d.errorf(b.LabelRanges[0].Ptr(), "Duplicate volume", "The volume %q is already declared at %s.", name, o.DeclRange.String())
			return
		}
		if o.Path == v.Path && v.Path != "" {
			d.errorf(c.Attributes["path"].Expr.Range().Ptr(), "Duplicate volume path", "The volumes %q and %q both mount %s.", o.Name, name, v.Path)
			return
		}
	}
	s.Volumes = append(s.Volumes, v)
}

func (d *decoder) serverRequires(s *Server, b *hcl.Block, r *reader) {
	c := d.blockContent(r, b.Body, requiresSchema)
	req := &Requires{Server: b.Labels[0], DeclRange: b.DefRange}
	for _, o := range s.Requires {
		if o.Server == req.Server {
			d.errorf(b.LabelRanges[0].Ptr(), "Duplicate requires block", "This server already pins %q at %s; combine the constraints in one block.", req.Server, o.DeclRange.String())
			return
		}
	}
	if a, ok := c.Attributes["version"]; ok {
		req.VersionRange = a.Expr.Range()
		r.constraint(c.Attributes, "version", &req.Constraint, &req.Version)
	}
	s.Requires = append(s.Requires, req)
}

func (d *decoder) serverCheck(s *Server, b *hcl.Block, r *reader) {
	name := b.Labels[0]
	for _, o := range s.Checks {
		if o.Name == name {
			d.errorf(b.LabelRanges[0].Ptr(), "Duplicate check", "The check %q is already declared at %s.", name, o.DeclRange.String())
			return
		}
	}
	c := d.blockContent(r, b.Body, checkSchema)
	ck := &Check{
		Name: name, Interval: DefaultCheckInterval, Timeout: DefaultCheckTimeout,
		SuccessThreshold: 1, FailureThreshold: 3, DeclRange: b.DefRange,
	}
	at := c.Attributes
	r.duration(at, "interval", &ck.Interval)
	r.duration(at, "timeout", &ck.Timeout)
	r.duration(at, "initial_delay", &ck.InitialDelay)
	r.integer(at, "success_threshold", &ck.SuccessThreshold, 1, 100)
	r.integer(at, "failure_threshold", &ck.FailureThreshold, 1, 100)
	if ck.Interval > 0 && ck.Timeout > ck.Interval {
		rng := b.DefRange
		if a, ok := at["timeout"]; ok {
			rng = a.Expr.Range()
		}
		d.errorf(&rng, "Check timeout longer than its interval", "The timeout (%s) must not be longer than the interval (%s).", ck.Timeout, ck.Interval)
	}
	if ck.Interval == 0 && at["interval"] != nil {
		d.errorf(at["interval"].Expr.Range().Ptr(), "Invalid duration", "A check's interval must be longer than zero.")
	}
	if len(c.Blocks) == 0 {
		d.errorf(b.DefRange.Ptr(), "Check has no kind",
			"The check %q says nothing to check: add exactly one of http {}, tcp {}, exec {} or mcp {}.", name)
		return
	}
	if len(c.Blocks) > 1 {
		d.errorf(c.Blocks[1].DefRange.Ptr(), "Check has more than one kind",
			"The check %q already is a %s check; write a separate check block for each kind.", name, c.Blocks[0].Type)
		return
	}
	kb := c.Blocks[0]
	ck.Kind = kb.Type
	switch kb.Type {
	case CheckHTTP:
		kc := d.blockContent(r, kb.Body, httpCheckSchema)
		h := &HTTPCheck{Path: "/", Method: "GET", Scheme: "http", Status: []int{200}}
		h.Port = d.checkPort(s, kb, kc.Attributes, r)
		r.str(kc.Attributes, "path", &h.Path)
		if !strings.HasPrefix(h.Path, "/") && kc.Attributes["path"] != nil {
			d.errorf(kc.Attributes["path"].Expr.Range().Ptr(), "Invalid path", "path must start with \"/\", not %q.", h.Path)
		}
		r.oneOf(kc.Attributes, "method", &h.Method, "GET", "HEAD", "POST")
		r.oneOf(kc.Attributes, "scheme", &h.Scheme, "http", "https")
		r.valueMap(kc.Attributes, "headers", &h.Headers)
		d.checkStatus(h, kc.Attributes, r)
		r.str(kc.Attributes, "body_contains", &h.BodyContains)
		if r.str(kc.Attributes, "body_regex", &h.BodyRegex) {
			if _, err := compileRegex(h.BodyRegex); err != nil {
				d.errorf(kc.Attributes["body_regex"].Expr.Range().Ptr(), "Invalid regular expression", "body_regex: %v.", err)
			}
		}
		ck.HTTP = h
	case CheckTCP:
		kc := d.blockContent(r, kb.Body, tcpCheckSchema)
		ck.TCP = &TCPCheck{Port: d.checkPort(s, kb, kc.Attributes, r)}
	case CheckExec:
		kc := d.blockContent(r, kb.Body, execCheckSchema)
		e := &ExecCheck{}
		if r.values(kc.Attributes, "command", &e.Command) && len(e.Command) == 0 {
			d.errorf(kc.Attributes["command"].Expr.Range().Ptr(), "Empty command", "command must name at least the program to run.")
		}
		ck.Exec = e
	case CheckMCP:
		ck.MCP = d.mcpCheck(s, kb, r)
	}
	s.Checks = append(s.Checks, ck)
}

func (d *decoder) checkStatus(h *HTTPCheck, at hcl.Attributes, r *reader) {
	a, ok := at["status"]
	if !ok {
		return
	}
	v, ok := r.eval(a)
	if !ok {
		return
	}
	var list []cty.Value
	switch {
	case v.Type() == cty.Number:
		list = []cty.Value{v}
	case v.CanIterateElements() && !v.Type().IsMapType() && !v.Type().IsObjectType():
		list = v.AsValueSlice()
	default:
		r.attrError(a, "Incorrect attribute value type", "status must be a status code or a list of them, such as 200 or [200, 204].")
		return
	}
	h.Status = nil
	for _, e := range list {
		n, err := toPortNumber(e) // same shape of check: a whole number
		if err != nil || n < 100 || n > 599 {
			r.attrError(a, "Invalid status code", "Every status must be an HTTP status code from 100 to 599.")
			return
		}
		h.Status = append(h.Status, n)
	}
}

// checkPort resolves a check's port name against the server's ports.
func (d *decoder) checkPort(s *Server, kb *hcl.Block, at hcl.Attributes, r *reader) string {
	var port string
	if !r.str(at, "port", &port) {
		if len(s.Ports) == 0 {
			if !s.portsFailed {
				d.errorf(kb.DefRange.Ptr(), "Check needs a port", "This %s check reaches the server over the network, but the server declares no port: add port = NUMBER to the server.", kb.Type)
			}
			return ""
		}
		return s.Ports[0].Name
	}
	names := make([]string, len(s.Ports))
	for i, p := range s.Ports {
		names[i] = p.Name
		if p.Name == port {
			return port
		}
	}
	if len(names) == 0 {
		d.errorf(at["port"].Expr.Range().Ptr(), "Unknown port", "The server has no port named %q: it declares no ports. Add port = NUMBER or ports = { %s = NUMBER } to the server.", port, port)
		return port
	}
	d.errorf(at["port"].Expr.Range().Ptr(), "Unknown port", "The server has no port named %q; its ports are %s.%s", port, quoteList(names), didYouMean(port, names))
	return port
}

func (d *decoder) mcpCheck(s *Server, kb *hcl.Block, r *reader) *MCPCheck {
	kc := d.blockContent(r, kb.Body, mcpCheckSchema)
	m := &MCPCheck{Path: "/mcp", Transport: "streamable-http", CheckVersion: true}
	at := kc.Attributes
	r.oneOf(at, "transport", &m.Transport, "streamable-http", "sse", "stdio")
	if m.Transport != "stdio" {
		m.Port = d.checkPort(s, kb, at, r)
	} else if s.ProviderType != "process" && s.ProviderType != "" {
		d.errorf(at["transport"].Expr.Range().Ptr(), "Transport not supported", "The stdio transport needs a process that tend starts itself: use it with the process provider only.")
	}
	if a, ok := at["command"]; ok {
		if m.Transport != "stdio" {
			d.errorf(a.NameRange.Ptr(), "command needs the stdio transport", "An mcp check's command is what a stdio check starts; over %s the check reaches the replica's port.", m.Transport)
		} else if r.values(at, "command", &m.Command) && len(m.Command) == 0 {
			d.errorf(a.Expr.Range().Ptr(), "Empty command", "command must name at least the program to run.")
		}
	}
	if m.Transport == "stdio" && m.Command == nil {
		m.Command = s.Command
	}
	r.str(at, "path", &m.Path)
	r.str(at, "protocol_version", &m.ProtocolVersion)
	r.boolean(at, "check_version", &m.CheckVersion)
	r.strings(at, "tools", &m.Tools)
	r.strings(at, "resources", &m.Resources)
	r.strings(at, "prompts", &m.Prompts)
	r.duration(at, "max_latency", &m.MaxLatency)
	for i, cb := range kc.Blocks {
		if i > 0 {
			d.errorf(cb.DefRange.Ptr(), "Duplicate call block", "An mcp check makes at most one smoke call.")
			continue
		}
		cc := d.blockContent(r, cb.Body, mcpCallSchema)
		call := &MCPCall{Arguments: Plain("{}")}
		r.str(cc.Attributes, "tool", &call.Tool)
		if a, ok := cc.Attributes["arguments"]; ok {
			if v, ok := r.evalSensitive(a); ok {
				if !v.Type().IsObjectType() && !v.Type().IsMapType() {
					r.attrError(a, "Incorrect attribute value type", "arguments must be an object, such as { query = \"ping\" }.")
				} else {
					call.Arguments = encodeJSONValue(v)
				}
			}
		}
		r.str(cc.Attributes, "expect", &call.Expect)
		m.Call = call
	}
	return m
}

func (d *decoder) serverRollout(s *Server, b *hcl.Block, r *reader) {
	ro := Rollout{
		Strategy:         StrategyRolling,
		MaxUnavailable:   IntOrPercent{Value: 1},
		VerifyFor:        DefaultVerifyFor,
		ProgressDeadline: DefaultProgressDeadline,
		FailAfter:        DefaultFailAfter,
		AutoRollback:     true,
		BackupBefore:     BackupNever,
	}
	if s.ProviderType == "null" {
		// Nothing can stop a record by itself: watching one proves nothing.
		ro.VerifyFor = 0
	}
	if b == nil {
		s.Rollout = ro
		return
	}
	ro.DeclRange = b.DefRange
	c := d.blockContent(r, b.Body, rolloutSchema)
	at := c.Attributes
	r.oneOf(at, "strategy", &ro.Strategy, StrategyRecreate, StrategyRolling, StrategyCanary)
	if ro.Strategy == StrategyCanary && s.ProviderType == "kubernetes" && s.Scaling != nil {
		// The canary's share is taken from the Deployment's replica count,
		// which an autoscaler owns.
		d.errorf(at["strategy"].Expr.Range().Ptr(), "Strategy not supported",
			"On the kubernetes provider a canary rollout runs its first replicas in a Deployment of their own and takes them from the server's Deployment, "+
				"whose replica count the autoscaler of the scaling block owns. Use strategy = \"rolling\" with a scaling block, or fixed replicas with the canary.")
	}
	r.intOrPercent(at, "max_unavailable", &ro.MaxUnavailable)
	r.intOrPercent(at, "max_surge", &ro.MaxSurge)
	if a, ok := at["canary_steps"]; ok {
		// null is the same as leaving it out (a conditional may give it).
		if v, ok := r.eval(a); ok {
			if ro.Strategy != StrategyCanary {
				d.errorf(a.NameRange.Ptr(), "canary_steps needs the canary strategy", "canary_steps applies only when strategy = \"canary\".")
			} else {
				d.canarySteps(&ro, a, v, r)
			}
		}
	}
	r.duration(at, "verify_for", &ro.VerifyFor)
	r.duration(at, "progress_deadline", &ro.ProgressDeadline)
	r.integer(at, "fail_after", &ro.FailAfter, 0, 100)
	r.boolean(at, "auto_rollback", &ro.AutoRollback)
	r.oneOf(at, "backup_before", &ro.BackupBefore, BackupNever, BackupAlways, BackupMajor)

	if ro.Strategy == StrategyRolling && ro.MaxUnavailable.Value == 0 && ro.MaxSurge.Value == 0 && at["max_unavailable"] != nil {
		d.errorf(at["max_unavailable"].Expr.Range().Ptr(), "Rolling update cannot progress",
			"max_unavailable and max_surge are both 0, so no replica could ever be replaced: allow at least one of them.")
	}
	if ro.ProgressDeadline <= ro.VerifyFor {
		rng := b.DefRange
		if a, ok := at["progress_deadline"]; ok {
			rng = a.Expr.Range()
		} else if a, ok := at["verify_for"]; ok {
			rng = a.Expr.Range()
		}
		d.errorf(&rng, "progress_deadline too short",
			"progress_deadline (%s) must be longer than verify_for (%s): a change must pass its checks for verify_for before the deadline.", ro.ProgressDeadline, ro.VerifyFor)
	}
	if ro.BackupBefore != BackupNever && at["backup_before"] != nil {
		defer func() {
			if s.Backup == nil {
				d.errorf(at["backup_before"].Expr.Range().Ptr(), "backup_before needs a backup block",
					"backup_before = %q takes a backup before a change, but the server has no backup block saying what to back up.", ro.BackupBefore)
			}
		}()
	}
	s.Rollout = ro
}

func (d *decoder) canarySteps(ro *Rollout, a *hcl.Attribute, v cty.Value, r *reader) {
	if !v.CanIterateElements() || v.Type().IsMapType() || v.Type().IsObjectType() {
		r.attrError(a, "Incorrect attribute value type", "canary_steps must be a list such as [1, \"50%%\"].")
		return
	}
	prevPct, prevN := -1, -1
	for _, e := range v.AsValueSlice() {
		step, err := toIntOrPercent(e)
		if err != nil {
			r.attrError(a, "Invalid canary step", "%s.", err)
			return
		}
		if step.Value == 0 {
			r.attrError(a, "Invalid canary step", "A canary step of 0 replicas does nothing.")
			return
		}
		if (step.Percent && step.Value <= prevPct) || (!step.Percent && step.Value <= prevN) {
			r.attrError(a, "Invalid canary steps", "Canary steps must grow: each step moves more replicas than the one before.")
			return
		}
		if step.Percent {
			prevPct = step.Value
		} else {
			prevN = step.Value
		}
		ro.CanarySteps = append(ro.CanarySteps, step)
	}
}

func (d *decoder) serverHooks(s *Server, b *hcl.Block, r *reader) {
	c := d.blockContent(r, b.Body, hooksSchema)
	h := &Hooks{Timeout: DefaultHookTimeout}
	for _, n := range []string{"pre_deploy", "migrate", "post_deploy"} {
		var dst *[]Value
		switch n {
		case "pre_deploy":
			dst = &h.PreDeploy
		case "migrate":
			dst = &h.Migrate
		default:
			dst = &h.PostDeploy
		}
		if r.values(c.Attributes, n, dst) && len(*dst) == 0 {
			d.errorf(c.Attributes[n].Expr.Range().Ptr(), "Empty command", "%s must name at least the program to run; remove it to run nothing.", n)
		}
	}
	r.duration(c.Attributes, "timeout", &h.Timeout)
	s.Hooks = h
}

func (d *decoder) serverScaling(s *Server, b *hcl.Block, r *reader, replicasSet bool) {
	c := d.blockContent(r, b.Body, scalingSchema)
	sc := &Scaling{Min: 1, ScaleDownWindow: DefaultScaleDownWindow, DeclRange: b.DefRange}
	at := c.Attributes
	if r.integer(at, "min", &sc.Min, 0, 10000) && sc.Min == 0 {
		d.errorf(at["min"].Expr.Range().Ptr(), "Scaling minimum of 0",
			"An autoscaler scales on what running replicas report; with none running, nothing would scale the server up again. Use min = 1 or more (to stop a server, set replicas = 0 without a scaling block).")
	}
	maxOK := r.integer(at, "max", &sc.Max, 1, 10000)
	r.integer(at, "cpu_percent", &sc.CPUPercent, 1, 100)
	r.integer(at, "memory_percent", &sc.MemoryPercent, 1, 100)
	r.duration(at, "scale_up_window", &sc.ScaleUpWindow)
	r.duration(at, "scale_down_window", &sc.ScaleDownWindow)
	for _, mb := range c.Blocks {
		mc := d.blockContent(r, mb.Body, metricSchema)
		m := &Metric{Name: mb.Labels[0], Path: "/metrics", declRange: mb.DefRange, portRange: mb.DefRange}
		for _, o := range sc.Metrics {
			if o.Name == m.Name {
				d.errorf(mb.LabelRanges[0].Ptr(), "Duplicate metric", "The metric %q is already declared at %s.", m.Name, o.declRange.String())
			}
		}
		if len(s.Ports) > 0 {
			m.Port = s.Ports[0].Name
		}
		if r.str(mc.Attributes, "port", &m.Port) {
			m.portRange, m.portSet = mc.Attributes["port"].Expr.Range(), true
		}
		if r.str(mc.Attributes, "path", &m.Path) {
			m.pathRange, m.pathSet = mc.Attributes["path"].Expr.Range(), true
		}
		if r.float(mc.Attributes, "target", &m.Target) && m.Target <= 0 {
			d.errorf(mc.Attributes["target"].Expr.Range().Ptr(), "Invalid metric target", "target must be greater than zero.")
		}
		sc.Metrics = append(sc.Metrics, m)
	}
	if maxOK && sc.Min > sc.Max {
		d.errorf(at["max"].Expr.Range().Ptr(), "Scaling minimum above maximum", "min (%d) must not be greater than max (%d).", sc.Min, sc.Max)
	}
	if sc.CPUPercent == 0 && sc.MemoryPercent == 0 && len(sc.Metrics) == 0 && !hasAny(at, "cpu_percent", "memory_percent") {
		d.errorf(b.DefRange.Ptr(), "Scaling has no target", "Say what to scale on: cpu_percent, memory_percent, or a metric block.")
	}
	if replicasSet && maxOK && sc.Min <= sc.Max && (s.Replicas < sc.Min || s.Replicas > sc.Max) {
		d.errorf(b.DefRange.Ptr(), "Replicas outside the scaling range", "replicas = %d is the starting count and must lie within min (%d) and max (%d).", s.Replicas, sc.Min, sc.Max)
	}
	if !replicasSet {
		s.Replicas = sc.Min
		if s.Replicas == 0 {
			s.Replicas = 1
		}
	}
	s.Scaling = sc
}

func hasAny(at hcl.Attributes, names ...string) bool {
	for _, n := range names {
		if _, ok := at[n]; ok {
			return true
		}
	}
	return false
}

func (d *decoder) serverBackup(s *Server, b *hcl.Block, r *reader) {
	c := d.blockContent(r, b.Body, backupSchema)
	bk := &Backup{KeepCount: 7, Timeout: time.Hour, DeclRange: b.DefRange}
	at := c.Attributes
	r.cronExpr(at, "schedule", &bk.Schedule)
	r.cronExpr(at, "drill", &bk.Drill)
	if a, ok := at["keep"]; ok {
		d.backupKeep(bk, a, r)
	}
	if r.strings(at, "paths", &bk.Paths) {
		bk.pathsRange = at["paths"].Expr.Range()
		for _, p := range bk.Paths {
			if !path.IsAbs(p) || path.Clean(p) != p {
				d.errorf(at["paths"].Expr.Range().Ptr(), "Invalid backup path", "%q is not a clean absolute path such as \"/data\".", p)
			}
		}
	}
	r.values(at, "command", &bk.Command)
	r.values(at, "restore_command", &bk.RestoreCommand)
	if len(bk.RestoreCommand) > 0 && len(bk.Command) == 0 && !hasAny(at, "command") {
		d.errorf(at["restore_command"].Expr.Range().Ptr(), "Restore command without a dump command",
			"restore_command reads what command wrote; give command too, or leave restore_command out.")
	}
	r.duration(at, "timeout", &bk.Timeout)
	r.boolean(at, "read_only", &bk.ReadOnly)
	// A secret that did not resolve is reported as such, not as plain text.
	if r.value(at, "encryption_key", &bk.EncryptionKey) && bk.EncryptionKey.IsKnown() && !bk.EncryptionKey.IsSensitive() {
		a := at["encryption_key"]
		d.errorf(a.Expr.Range().Ptr(), "Encryption key in plain text", "A backup encryption key must not be in the repository: use encryption_key = secret(\"NAME\") (from TEND_SECRET_NAME), or a sensitive variable.")
	}
	if r.str(at, "destination", &bk.Destination) {
		bk.destinationRange = at["destination"].Expr.Range()
	}
	d.backupDestination(bk, at, c.Blocks, r)
	if len(bk.Paths) == 0 && len(bk.Command) == 0 && !hasAny(at, "paths", "command") {
		d.errorf(b.DefRange.Ptr(), "Backup has nothing to back up", "Give paths (data paths to copy), a command (whose output is the backup), or both.")
	}
	s.Backup = bk
}

// backupDestination checks destination and decodes the s3 block that an
// s3:// destination may take.
func (d *decoder) backupDestination(bk *Backup, at hcl.Attributes, blocks hcl.Blocks, r *reader) {
	dest := bk.Destination
	isS3 := strings.HasPrefix(dest, "s3://")
	switch {
	case dest == "" || path.IsAbs(dest):
	case strings.HasPrefix(dest, "file://"):
		if !path.IsAbs(strings.TrimPrefix(dest, "file://")) {
			d.errorf(bk.destinationRange.Ptr(), "Invalid backup destination", "A file:// destination names an absolute directory, such as \"file:///var/backups/tend\", not %q.", dest)
		}
	case isS3:
		bucket, _, _ := strings.Cut(strings.TrimPrefix(dest, "s3://"), "/")
		if !validBucket(bucket) {
			d.errorf(bk.destinationRange.Ptr(), "Invalid backup destination", "%q does not name an S3 bucket: write s3://BUCKET/PREFIX, with a bucket name of 3 to 63 lower-case letters, digits, dots and hyphens.", dest)
		}
	default:
		d.errorf(bk.destinationRange.Ptr(), "Invalid backup destination", "destination must be an absolute directory, a file:// URL or an s3://BUCKET/PREFIX URL, not %q.", dest)
	}
	for _, blk := range blocks {
		if bk.S3 != nil {
			d.errorf(blk.DefRange.Ptr(), "Duplicate s3 block", "A backup block takes at most one s3 block; the first is at %s.", bk.S3.DeclRange.String())
			continue
		}
		if !isS3 {
			d.errorf(blk.DefRange.Ptr(), "s3 block without an s3 destination", "The s3 block sets how to reach an object store; it needs destination = \"s3://BUCKET/PREFIX\".")
		}
		c := d.blockContent(r, blk.Body, backupS3Schema)
		s3 := &BackupS3{Region: "us-east-1", DeclRange: blk.DefRange}
		r.str(c.Attributes, "endpoint", &s3.Endpoint)
		if a, ok := c.Attributes["endpoint"]; ok && s3.Endpoint != "" &&
			!strings.HasPrefix(s3.Endpoint, "http://") && !strings.HasPrefix(s3.Endpoint, "https://") {
			d.errorf(a.Expr.Range().Ptr(), "Invalid S3 endpoint", "endpoint must be an http:// or https:// URL such as \"https://s3.example.com\", not %q.", s3.Endpoint)
		}
		r.str(c.Attributes, "region", &s3.Region)
		r.value(c.Attributes, "access_key", &s3.AccessKey)
		if r.value(c.Attributes, "secret_key", &s3.SecretKey) && s3.SecretKey.IsKnown() && !s3.SecretKey.IsSensitive() {
			a := c.Attributes["secret_key"]
			d.errorf(a.Expr.Range().Ptr(), "Secret key in plain text", "An S3 secret key must not be in the repository: use secret_key = secret(\"NAME\") (from TEND_SECRET_NAME), or a sensitive variable.")
		}
		if _, ok := c.Attributes["access_key"]; ok != hasAny(c.Attributes, "secret_key") {
			d.errorf(blk.DefRange.Ptr(), "Incomplete S3 credentials", "Give access_key and secret_key together, or neither (then tend reads AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY from its environment).")
		}
		r.boolean(c.Attributes, "path_style", &s3.PathStyle)
		bk.S3 = s3
	}
	if isS3 && bk.S3 == nil {
		bk.S3 = &BackupS3{Region: "us-east-1"}
	}
}

// validBucket reports whether b is a valid S3 bucket name.
func validBucket(b string) bool {
	if len(b) < 3 || len(b) > 63 {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-') {
			return false
		}
	}
	return b[0] != '.' && b[0] != '-' && b[len(b)-1] != '.' && b[len(b)-1] != '-'
}

// checkBackupPaths runs after every block of the server is read, so that a
// backup block may come before the volumes it copies.
func (d *decoder) checkBackupPaths(s *Server) {
	if s.Backup == nil {
		return
	}
	if s.ProviderType == "kubernetes" {
		d.errorf(s.Backup.DeclRange.Ptr(), "Backup not supported",
			"The kubernetes provider cannot copy a pod's volumes out or in, nor stop a pod while its data is replaced, so tend could not take or restore this backup. "+
				"Back up the server's persistent volumes with the cluster's own tools (a VolumeSnapshot, Velero), or run it on the process, systemd or docker provider.")
		return
	}
	for _, p := range s.Backup.Paths {
		if path.IsAbs(p) && path.Clean(p) == p && !d.underVolume(s, p) {
			rng := s.Backup.pathsRange
			d.errorf(&rng, "Backup path is not a data path",
				"%q is not inside a volume of this server; declare the data path, such as volume \"data\" { path = \"/data\" }.", p)
		}
	}
}

// checkMetricPorts checks scaling metrics against the server's ports.
func (d *decoder) checkMetricPorts(s *Server) {
	if s.Scaling == nil {
		return
	}
	var names []string
	for _, p := range s.Ports {
		names = append(names, p.Name)
	}
	for _, m := range s.Scaling.Metrics {
		if s.ProviderType == "kubernetes" {
			// The HorizontalPodAutoscaler reads the metric by its name from
			// the cluster's custom metrics API (a Prometheus adapter);
			// nothing reads the replicas' endpoint.
			for _, set := range []struct {
				ok   bool
				name string
				rng  hcl.Range
			}{{m.portSet, "port", m.portRange}, {m.pathSet, "path", m.pathRange}} {
				if set.ok {
					rng := set.rng
					d.errorf(&rng, "Metric "+set.name+" not used on kubernetes",
						"On the kubernetes provider the HorizontalPodAutoscaler reads the metric %q by its name from the cluster's custom metrics API (served by an adapter such as prometheus-adapter); it does not read the replicas' %s. Remove %s, and have the adapter serve %q.", m.Name, set.name, set.name, m.Name)
				}
			}
			continue
		}
		if m.Port == "" && !s.portsFailed {
			rng := m.declRange
			d.errorf(&rng, "Metric needs a port", "The metric %q is read over HTTP, but the server declares no port.", m.Name)
		} else if m.Port != "" && !contains(names, m.Port) && !s.portsFailed {
			rng := m.portRange
			d.errorf(&rng, "Unknown port", "The server has no port named %q; its ports are %s.%s", m.Port, quoteList(names), didYouMean(m.Port, names))
		}
	}
}

func (d *decoder) underVolume(s *Server, p string) bool {
	for _, v := range s.Volumes {
		if p == v.Path || strings.HasPrefix(p, strings.TrimSuffix(v.Path, "/")+"/") {
			return true
		}
	}
	return false
}

func (d *decoder) backupKeep(bk *Backup, a *hcl.Attribute, r *reader) {
	v, ok := r.eval(a)
	if !ok {
		return
	}
	if !v.Type().IsObjectType() {
		r.attrError(a, "Incorrect attribute value type", "keep must be an object such as { count = 30, age = \"30d\" }.")
		return
	}
	for name := range v.Type().AttributeTypes() {
		if name != "count" && name != "age" {
			r.attrError(a, "Unsupported keep setting", "%q is not a keep setting; use count and age.%s", name, didYouMean(name, []string{"count", "age"}))
			return
		}
	}
	if v.Type().HasAttribute("count") {
		n, err := toPortNumber(v.GetAttr("count"))
		if err != nil {
			r.attrError(a, "Invalid keep count", "count must be a whole number of at least 1.")
		} else {
			bk.KeepCount = n
		}
	}
	if v.Type().HasAttribute("age") {
		age := v.GetAttr("age")
		if age.Type() != cty.String {
			r.attrError(a, "Invalid keep age", "age must be a duration string such as \"30d\".")
			return
		}
		dur, err := ParseDuration(age.AsString())
		if err != nil || dur <= 0 {
			r.attrError(a, "Invalid keep age", "age must be a duration such as \"30d\" or \"12h\", not %q.", age.AsString())
			return
		}
		bk.KeepAge = dur
	}
}

// reloadSignals are the signals a reload block may send: those servers
// use to re-read their configuration (nginx, HAProxy, Caddy, PostgreSQL
// use HUP; Apache USR1). A signal that ends a process is no reload.
var reloadSignals = []string{"HUP", "USR1", "USR2"}

// reloadMethods are the HTTP methods of a reload block's http.
var reloadMethods = []string{"POST", "PUT", "GET"}

func (d *decoder) serverReload(s *Server, b *hcl.Block, r *reader) {
	c := d.blockContent(r, b.Body, reloadSchema)
	at := c.Attributes
	rl := &Reload{Timeout: DefaultReloadTimeout, DeclRange: b.DefRange}
	var ways []string
	for _, n := range []string{"signal", "command", "http"} {
		if _, ok := at[n]; ok {
			ways = append(ways, n)
		}
	}
	switch {
	case len(ways) == 0:
		d.errorf(b.DefRange.Ptr(), "Missing reload method", "A reload block says how a replica re-reads its config files: signal = \"HUP\", command = [...] (run in or beside the replica), or http = \"POST /admin/reload\" (sent to the replica's port).")
	case len(ways) > 1:
		a := at[ways[1]]
		d.errorf(a.NameRange.Ptr(), "Conflicting reload methods", "A reload block has one of signal, command and http; this one has %s.", strings.Join(ways, " and "))
	}
	if r.str(at, "signal", &rl.Signal) {
		sig := strings.TrimPrefix(strings.ToUpper(rl.Signal), "SIG")
		if !contains(reloadSignals, sig) {
			d.errorf(at["signal"].Expr.Range().Ptr(), "Invalid reload signal", "signal must be one of %s (without SIG), not %q: a signal that stops the process is no reload.", strings.Join(reloadSignals, ", "), rl.Signal)
		}
		rl.Signal = sig
	}
	if r.values(at, "command", &rl.Command) && len(rl.Command) == 0 {
		d.errorf(at["command"].Expr.Range().Ptr(), "Empty command", "command must name at least the program to run.")
	}
	var req string
	if r.str(at, "http", &req) {
		method, p, ok := strings.Cut(strings.TrimSpace(req), " ")
		p = strings.TrimSpace(p)
		if !ok || !contains(reloadMethods, method) || !strings.HasPrefix(p, "/") || strings.ContainsAny(p, " \t") {
			d.errorf(at["http"].Expr.Range().Ptr(), "Invalid reload request", "http is a method (%s) and a path, such as \"POST /admin/reload\", not %q.", strings.Join(reloadMethods, ", "), req)
		} else {
			rl.HTTPMethod, rl.HTTPPath = method, p
		}
	}
	if a, ok := at["port"]; ok {
		if _, isHTTP := at["http"]; !isHTTP {
			d.errorf(a.NameRange.Ptr(), "Port without http", "port names the port a reload request is sent to; it means nothing without http.")
		}
		r.str(at, "port", &rl.Port)
		rl.portRange = a.Expr.Range()
	}
	if r.duration(at, "timeout", &rl.Timeout) && rl.Timeout <= 0 {
		d.errorf(at["timeout"].Expr.Range().Ptr(), "Invalid timeout", "timeout must be more than 0.")
	}
	if s.ProviderType == "kubernetes" {
		d.errorf(b.DefRange.Ptr(), "Reload not supported on kubernetes", "On the kubernetes provider a config file is a key of a ConfigMap mounted into the pod, and the kubelet updates a mounted ConfigMap only after its sync period (a minute or more) and never one mounted with subPath, so tend cannot know when a replica could read the new file. A change of config files replaces the pods by the rollout strategy; remove the reload block.")
	}
	s.Reload = rl
}

// checkReloadPort checks the port a reload request goes to: a port of the
// server, by default its first.
func (d *decoder) checkReloadPort(s *Server) {
	rl := s.Reload
	if rl == nil || rl.HTTPMethod == "" || s.portsFailed {
		return
	}
	if rl.Port == "" {
		if len(s.Ports) == 0 {
			d.errorf(rl.DeclRange.Ptr(), "Reload needs a port", "The reload request is sent over HTTP, but the server declares no port.")
			return
		}
		rl.Port = s.Ports[0].Name
		return
	}
	names := make([]string, 0, len(s.Ports))
	for _, p := range s.Ports {
		names = append(names, p.Name)
	}
	if !contains(names, rl.Port) {
		rng := rl.portRange
		d.errorf(&rng, "Unknown port", "The server has no port %q; its ports are %s.", rl.Port, strings.Join(names, ", "))
	}
}
