package spec

import (
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"
	_ "time/tzdata" // window timezones must not depend on the host's zoneinfo

	"github.com/Masterminds/semver/v3"
	"github.com/hashicorp/hcl/v2"
)

// Defaults of the tend block.
const (
	DefaultPollInterval    = 30 * time.Second
	DefaultParallelism     = 10
	DefaultMaxPrunePercent = 50
)

var tendSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "required_version"}, {Name: "poll_interval"}, {Name: "parallelism"},
		{Name: "schedule"}, {Name: "self_heal"}, {Name: "prune"}, {Name: "max_prune_percent"},
		{Name: "overcommit_percent"}, {Name: "block_vulnerable"},
	},
	Blocks: []hcl.BlockHeaderSchema{{Type: "update"}, {Type: "approval"}, {Type: "promotion"}, {Type: "advisories"}},
}

var advisoriesSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "source", Required: true}}}

// decodeTend checks required_version first, before anything else can fail
// in confusing ways on a repository written for a newer tend.
func (d *decoder) decodeTend(blocks []*hcl.Block) {
	d.cfg.Tend = Tend{
		PollInterval:    DefaultPollInterval,
		Parallelism:     DefaultParallelism,
		Prune:           true,
		MaxPrunePercent: DefaultMaxPrunePercent,
	}
	for i, b := range blocks {
		if i > 0 {
			d.errorf(b.DefRange.Ptr(), "Duplicate tend block", "Only one tend block is allowed; the first is at %s.", blocks[0].DefRange.String())
			continue
		}
		d.cfg.Tend.DeclRange = b.DefRange
		content, _, _ := b.Body.PartialContent(&hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "required_version"}}})
		a, ok := content.Attributes["required_version"]
		if !ok {
			continue
		}
		r := d.reader(nil)
		var c *semver.Constraints
		if !r.constraint(content.Attributes, "required_version", &c, &d.cfg.Tend.RequiredVersion) || d.opts.TendVersion == "" {
			continue
		}
		bin, err := semver.NewVersion(d.opts.TendVersion)
		if err != nil {
			continue
		}
		if !c.Check(bin) {
			d.errorf(a.Expr.Range().Ptr(), "Unsupported tend version",
				"This repository requires tend %s, but this is tend %s. Upgrade tend, or change required_version.", d.cfg.Tend.RequiredVersion, d.opts.TendVersion)
		}
	}
}

// decodeTendSettings decodes the rest of the tend block, with variables
// and locals in scope.
func (d *decoder) decodeTendSettings(blocks []*hcl.Block) {
	if len(blocks) == 0 {
		return
	}
	content, diags := blocks[0].Body.Content(tendSchema)
	d.diags = append(d.diags, diags...)
	r := d.reader(d.ctx)
	t := &d.cfg.Tend
	if r.duration(content.Attributes, "poll_interval", &t.PollInterval) && t.PollInterval < time.Second {
		d.errorf(content.Attributes["poll_interval"].Expr.Range().Ptr(), "Invalid value for poll_interval", "poll_interval must be at least 1s.")
	}
	r.integer(content.Attributes, "parallelism", &t.Parallelism, 1, 1000)
	r.cronExpr(content.Attributes, "schedule", &t.Schedule)
	r.boolean(content.Attributes, "self_heal", &t.SelfHeal)
	r.boolean(content.Attributes, "prune", &t.Prune)
	r.integer(content.Attributes, "max_prune_percent", &t.MaxPrunePercent, 0, 100)
	r.integer(content.Attributes, "overcommit_percent", &t.OvercommitPercent, 100, 1000)
	var updates []*hcl.Block
	for _, b := range content.Blocks {
		if b.Type == "update" {
			updates = append(updates, b)
		}
	}
	for i, b := range updates {
		if i > 0 {
			d.errorf(b.DefRange.Ptr(), "Duplicate update block", "The tend block has at most one update block; the first is at %s.", updates[0].DefRange.String())
			continue
		}
		t.Update = d.decodeUpdate(b, r)
	}
	if r.boolean(content.Attributes, "block_vulnerable", &t.BlockVulnerable) {
		t.BlockVulnerableRange = content.Attributes["block_vulnerable"].Expr.Range()
	}
	var advisories []*hcl.Block
	for _, b := range content.Blocks {
		if b.Type == "advisories" {
			advisories = append(advisories, b)
		}
	}
	t.advisoriesBlock = len(advisories) > 0
	for i, b := range advisories {
		if i > 0 {
			d.errorf(b.DefRange.Ptr(), "Duplicate advisories block", "The tend block has at most one advisories block; the first is at %s.", advisories[0].DefRange.String())
			continue
		}
		d.decodeAdvisories(b, r)
	}
	t.Approval, t.Promotion = d.decodeGovernance(content.Blocks, r, "The tend block")
}

// checkBlockVulnerable refuses block_vulnerable = true (in the tend block
// or a server) when the tend block names no advisories: nothing could be
// blocked.
func (d *decoder) checkBlockVulnerable() {
	t := &d.cfg.Tend
	if t.advisoriesBlock {
		return
	}
	const detail = "block_vulnerable = true refuses plans that would deploy a version with a known vulnerability, and the tend block names no advisories: add advisories { source = \"DIR or URL\" } to the tend block."
	if t.BlockVulnerable {
		d.errorf(t.BlockVulnerableRange.Ptr(), "No advisories", detail)
	}
	for _, n := range sortedKeys(d.cfg.Servers) {
		if s := d.cfg.Servers[n]; s.BlockVulnerable != nil && *s.BlockVulnerable {
			d.errorf(s.BlockVulnerableRange.Ptr(), "No advisories", detail)
		}
	}
}

// decodeAdvisories decodes tend { advisories { source = "…" } }: a folder
// of OSV .json files, or an http(s) URL of a JSON array of OSV records.
func (d *decoder) decodeAdvisories(b *hcl.Block, r *reader) {
	c := d.blockContent(r, b.Body, advisoriesSchema)
	var src string
	if !r.str(c.Attributes, "source", &src) {
		return
	}
	rng := c.Attributes["source"].Expr.Range()
	if strings.TrimSpace(src) == "" {
		d.errorf(rng.Ptr(), "Invalid advisories source", "The source is a folder of OSV .json files, or an http:// or https:// URL of a JSON array of OSV records; it is empty.")
		return
	}
	if strings.Contains(src, "://") && !strings.HasPrefix(src, "http://") && !strings.HasPrefix(src, "https://") {
		d.errorf(rng.Ptr(), "Invalid advisories source", "%q: the source is a folder of OSV .json files, or an http:// or https:// URL.", redactURL(src))
		return
	}
	d.cfg.Tend.Advisories = &Advisories{Source: src, Shown: redactURL(src), Range: rng}
}

// redactURL drops the user information of a URL (https://user:token@host/).
func redactURL(s string) string {
	if u, err := url.Parse(s); err == nil && u.User != nil {
		u.User = nil
		return u.String()
	}
	return s
}

// ProviderTypes are the provider types the language knows.
var ProviderTypes = []string{"docker", "kubernetes", "null", "process", "systemd"}

var providerSchemas = map[string]*hcl.BodySchema{
	"process": {Attributes: []hcl.AttributeSchema{{Name: "work_dir"}, {Name: "stop_timeout"}, {Name: "host"}}},
	"docker": {
		Attributes: []hcl.AttributeSchema{{Name: "host"}, {Name: "api_version"}, {Name: "network"}, {Name: "pull_policy"},
			{Name: "publish_address"}, {Name: "restart_policy"}, {Name: "stop_timeout"}, {Name: "docker_config"}},
		Blocks: []hcl.BlockHeaderSchema{{Type: "tls"}, {Type: "registry", LabelNames: []string{"host"}}},
	},
	"systemd": {Attributes: []hcl.AttributeSchema{
		{Name: "unit_dir"}, {Name: "user_mode"}, {Name: "artifact_dir"}, {Name: "keep_artifacts"}, {Name: "user"},
	}},
	"kubernetes": {Attributes: []hcl.AttributeSchema{
		{Name: "kubeconfig"}, {Name: "context"}, {Name: "namespace"}, {Name: "in_cluster"}, {Name: "checks_via"},
	}},
	"null": {}, // runs nothing: no settings
}

var registrySchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
	{Name: "username", Required: true}, {Name: "password", Required: true},
}}

var tlsSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
	{Name: "ca_file"}, {Name: "cert_file"}, {Name: "key_file"},
}}

// dockerRegistry decodes a `registry "HOST" { username, password }` block.
func (d *decoder) dockerRegistry(s *DockerSettings, b *hcl.Block, r *reader) {
	host := strings.ToLower(strings.TrimSpace(b.Labels[0]))
	if host == "" || strings.ContainsAny(host, "/ \t") {
		d.errorf(b.LabelRanges[0].Ptr(), "Invalid registry host", "%q is not a registry host: name it as in image references, such as \"registry.example.com\", \"registry.example.com:5000\" or \"docker.io\".", b.Labels[0])
		return
	}
	for _, prev := range s.Registries {
		if prev.Host == host {
			d.errorf(b.DefRange.Ptr(), "Duplicate registry block", "Registry %q already has credentials, at %s.", host, prev.DeclRange.String())
			return
		}
	}
	c := d.blockContent(r, b.Body, registrySchema)
	ra := &RegistryAuth{Host: host, DeclRange: b.DefRange}
	r.str(c.Attributes, "username", &ra.Username)
	r.value(c.Attributes, "password", &ra.Password)
	if a, ok := c.Attributes["password"]; ok && ra.Password.IsKnown() && !ra.Password.IsSensitive() {
		d.errorf(a.Expr.Range().Ptr(), "Password in plain text", "A registry password must not be in the repository: use password = secret(\"NAME\") (from TEND_SECRET_NAME), or a sensitive variable.")
	}
	s.Registries = append(s.Registries, ra)
}

// DefaultProcessProvider is the provider a server gets when the repository
// declares none: local processes, the embedded default.
const DefaultProcessProvider = "process.default"

func (d *decoder) decodeProviders(blocks []*hcl.Block) {
	for _, b := range blocks {
		typ, name := b.Labels[0], b.Labels[1]
		schema, ok := providerSchemas[typ]
		if !ok {
			d.errorf(b.LabelRanges[0].Ptr(), "Unknown provider type",
				"%q is not a provider type; tend has %s.%s", typ, quoteList(ProviderTypes), didYouMean(typ, ProviderTypes))
			continue
		}
		if !validName(name) {
			d.errorf(b.LabelRanges[1].Ptr(), "Invalid provider name", "%q is not a valid name: %s", name, nameRule)
			continue
		}
		key := typ + "." + name
		if prev, ok := d.cfg.Providers[key]; ok {
			d.duplicate("provider", key, b, prev.DeclRange)
			continue
		}
		r := d.reader(d.ctx)
		content := d.blockContent(r, b.Body, schema)
		p := &Provider{Type: typ, Name: name, DeclRange: b.DefRange}
		at := content.Attributes
		switch typ {
		case "process":
			s := &ProcessSettings{StopTimeout: 10 * time.Second, Host: "127.0.0.1"}
			r.str(at, "work_dir", &s.WorkDir)
			r.duration(at, "stop_timeout", &s.StopTimeout)
			r.str(at, "host", &s.Host)
			p.Process = s
		case "docker":
			s := &DockerSettings{Host: "unix:///var/run/docker.sock", PullPolicy: "missing",
				PublishAddress: "127.0.0.1", RestartPolicy: "unless-stopped", StopTimeout: 10 * time.Second}
			r.str(at, "host", &s.Host)
			r.str(at, "api_version", &s.APIVersion)
			r.str(at, "network", &s.Network)
			r.oneOf(at, "pull_policy", &s.PullPolicy, "missing", "always", "never")
			r.str(at, "publish_address", &s.PublishAddress)
			if a, ok := at["publish_address"]; ok && s.PublishAddress != "" && net.ParseIP(s.PublishAddress) == nil {
				d.errorf(a.Expr.Range().Ptr(), "Invalid publish address", "publish_address is the host IP address container ports are published on, such as \"127.0.0.1\" or \"0.0.0.0\"; %q is not an IP address.", s.PublishAddress)
			}
			r.oneOf(at, "restart_policy", &s.RestartPolicy, "unless-stopped", "always", "on-failure", "no")
			r.duration(at, "stop_timeout", &s.StopTimeout)
			r.str(at, "docker_config", &s.DockerConfig)
			var firstTLS *hcl.Block
			for _, tb := range content.Blocks {
				if tb.Type == "registry" {
					d.dockerRegistry(s, tb, r)
					continue
				}
				if firstTLS != nil {
					d.errorf(tb.DefRange.Ptr(), "Duplicate tls block", "A docker provider has at most one tls block; the first is at %s.", firstTLS.DefRange.String())
					continue
				}
				firstTLS = tb
				tc := d.blockContent(r, tb.Body, tlsSchema)
				s.TLS = &TLSSettings{}
				r.str(tc.Attributes, "ca_file", &s.TLS.CAFile)
				r.str(tc.Attributes, "cert_file", &s.TLS.CertFile)
				r.str(tc.Attributes, "key_file", &s.TLS.KeyFile)
			}
			p.Docker = s
		case "systemd":
			s := &SystemdSettings{ArtifactDir: "/opt/tend", KeepArtifacts: 3}
			r.boolean(at, "user_mode", &s.UserMode)
			if s.UnitDir = "/etc/systemd/system"; s.UserMode {
				s.UnitDir = "~/.config/systemd/user" // the provider expands ~
			}
			r.str(at, "unit_dir", &s.UnitDir)
			r.str(at, "artifact_dir", &s.ArtifactDir)
			r.integer(at, "keep_artifacts", &s.KeepArtifacts, 1, 100)
			r.str(at, "user", &s.User)
			p.Systemd = s
		case "kubernetes":
			s := &KubernetesSettings{Namespace: "default"}
			r.str(at, "kubeconfig", &s.Kubeconfig)
			r.str(at, "context", &s.Context)
			r.str(at, "namespace", &s.Namespace)
			r.boolean(at, "in_cluster", &s.InCluster)
			r.oneOf(at, "checks_via", &s.ChecksVia, ChecksViaAPIProxy, ChecksViaPodIP)
			if s.InCluster && (s.Kubeconfig != "" || s.Context != "") {
				d.errorf(b.DefRange.Ptr(), "Conflicting kubernetes settings", "in_cluster = true uses the pod's service account; remove kubeconfig and context, or set in_cluster = false.")
			}
			if !validName(s.Namespace) {
				d.errorf(at["namespace"].Expr.Range().Ptr(), "Invalid namespace", "%q is not a valid namespace: %s", s.Namespace, nameRule)
			}
			p.Kubernetes = s
		}
		d.cfg.Providers[key] = p
	}
}

var windowSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
	{Name: "schedule", Required: true}, {Name: "duration", Required: true},
	{Name: "action"}, {Name: "servers"}, {Name: "timezone"},
}}

func (d *decoder) decodeWindows(blocks []*hcl.Block) {
	for _, b := range blocks {
		name := b.Labels[0]
		if !validName(name) {
			d.errorf(b.LabelRanges[0].Ptr(), "Invalid window name", "%q is not a valid name: %s", name, nameRule)
			continue
		}
		if prev, ok := d.cfg.Windows[name]; ok {
			d.duplicate("window", name, b, prev.DeclRange)
			continue
		}
		r := d.reader(d.ctx)
		content := d.blockContent(r, b.Body, windowSchema)
		w := &Window{Name: name, Action: "deny", DeclRange: b.DefRange}
		at := content.Attributes
		if r.cronExpr(at, "schedule", &w.Schedule) && strings.HasPrefix(strings.TrimSpace(w.Schedule), "@every") {
			d.errorf(at["schedule"].Expr.Range().Ptr(), "Invalid window schedule",
				"A window opens at fixed times, such as \"0 22 * * *\" or \"@daily\"; %q counts from whenever tend looks, so the window would never be open.", w.Schedule)
		}
		if r.duration(at, "duration", &w.Duration) && w.Duration == 0 {
			d.errorf(at["duration"].Expr.Range().Ptr(), "Invalid duration", "A window's duration must be longer than zero.")
		}
		r.oneOf(at, "action", &w.Action, "allow", "deny")
		r.refs(at, "servers", "server", &w.Servers)
		if r.str(at, "timezone", &w.Timezone) {
			if _, err := time.LoadLocation(w.Timezone); err != nil {
				d.errorf(at["timezone"].Expr.Range().Ptr(), "Unknown time zone", "%q is not a time zone of the IANA database, such as \"UTC\" or \"Europe/Berlin\".", w.Timezone)
			}
		}
		d.cfg.Windows[name] = w
	}
}

var notifySchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
	{Name: "url", Required: true}, {Name: "events"}, {Name: "format"}, {Name: "headers"}, {Name: "servers"},
}}

func (d *decoder) decodeNotifies(blocks []*hcl.Block) {
	for _, b := range blocks {
		name := b.Labels[0]
		if !validName(name) {
			d.errorf(b.LabelRanges[0].Ptr(), "Invalid notify name", "%q is not a valid name: %s", name, nameRule)
			continue
		}
		if prev, ok := d.cfg.Notifies[name]; ok {
			d.duplicate("notify", name, b, prev.DeclRange)
			continue
		}
		r := d.reader(d.ctx)
		content := d.blockContent(r, b.Body, notifySchema)
		n := &Notify{Name: name, Format: "json", Events: append([]string(nil), NotifyEvents...), DeclRange: b.DefRange}
		at := content.Attributes
		if r.value(at, "url", &n.URL) && n.URL.IsKnown() {
			if !validURL(n.URL.Reveal()) {
				// Do not echo a sensitive URL: webhook URLs often carry a token.
				d.errorf(at["url"].Expr.Range().Ptr(), "Invalid URL", "url must be an http:// or https:// URL, not %s.", displayQuoted(n.URL))
			}
		}
		if r.strings(at, "events", &n.Events) {
			for _, e := range n.Events {
				if !contains(NotifyEvents, e) {
					d.errorf(at["events"].Expr.Range().Ptr(), "Unknown event", "%q is not an event; events are %s.%s", e, quoteList(NotifyEvents), didYouMean(e, NotifyEvents))
				}
			}
		}
		r.oneOf(at, "format", &n.Format, "json", "slack")
		r.valueMap(at, "headers", &n.Headers)
		r.refs(at, "servers", "server", &n.Servers)
		d.cfg.Notifies[name] = n
	}
}

func displayQuoted(v Value) string {
	if v.IsSensitive() {
		return Redacted
	}
	return fmt.Sprintf("%q", v.Reveal())
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

func validURL(s string) bool {
	for _, p := range []string{"http://", "https://"} {
		if len(s) > len(p) && s[:len(p)] == p {
			return true
		}
	}
	return false
}

// nameRule says what a name of a server, provider or namespace may be.
const nameRule = "use lower-case letters, digits and '-', start with a letter, end with a letter or digit, at most 63 characters (it becomes a unit, container and Kubernetes object name)."

func validName(s string) bool {
	if len(s) == 0 || len(s) > 63 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z':
		case c >= '0' && c <= '9' && i > 0:
		case c == '-' && i > 0 && i < len(s)-1:
		default:
			return false
		}
	}
	return true
}
