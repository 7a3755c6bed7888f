package fleetdocs

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tendhq/tend/reconcile/contract"
	"github.com/tendhq/tend/spec"
)

// The model of the documentation: fleet.json is its JSON form, and the
// Markdown pages are rendered from it, so that they agree. Every string in
// it is safe to publish: values of the desired state went through
// spec.Value.String.

type fleetDoc struct {
	Title     string        `json:"title"`
	Env       string        `json:"env,omitempty"`
	Providers []providerDoc `json:"providers"`
	Servers   []*serverDoc  `json:"servers"`
	Windows   []windowDoc   `json:"windows,omitempty"`
}

type providerDoc struct {
	Key      string            `json:"key"`
	Type     string            `json:"type"`
	Settings map[string]string `json:"settings,omitempty"`
}

type windowDoc struct {
	Name     string   `json:"name"`
	Action   string   `json:"action"`
	Schedule string   `json:"schedule"`
	Duration string   `json:"duration"`
	Timezone string   `json:"timezone,omitempty"`
	Servers  []string `json:"servers,omitempty"` // empty: every server
}

type serverDoc struct {
	Name              string            `json:"name"`
	Provider          string            `json:"provider"`
	ProviderType      string            `json:"provider_type"`
	Version           string            `json:"version,omitempty"`
	VersionConstraint string            `json:"version_constraint,omitempty"`
	Image             string            `json:"image,omitempty"`
	Command           []string          `json:"command,omitempty"`
	Args              []string          `json:"args,omitempty"`
	Artifact          *artifactDoc      `json:"artifact,omitempty"`
	WorkDir           string            `json:"work_dir,omitempty"`
	User              string            `json:"user,omitempty"`
	Replicas          int               `json:"replicas"`
	Ports             []portDoc         `json:"ports,omitempty"`
	Endpoints         []endpointDoc     `json:"endpoints,omitempty"`
	Env               []envDoc          `json:"env,omitempty"`
	ConfigFiles       []configFileDoc   `json:"config_files,omitempty"`
	Limits            *limitsDoc        `json:"limits,omitempty"`
	Volumes           []volumeDoc       `json:"volumes,omitempty"`
	Labels            map[string]string `json:"labels,omitempty"`
	Selector          map[string]string `json:"selector,omitempty"`
	DependsOn         []string          `json:"depends_on,omitempty"`
	Requires          []requireDoc      `json:"requires,omitempty"`
	Checks            []checkDoc        `json:"checks,omitempty"`
	Rollout           rolloutDoc        `json:"rollout"`
	Hooks             *hooksDoc         `json:"hooks,omitempty"`
	Scaling           *scalingDoc       `json:"scaling,omitempty"`
	Backup            *backupDoc        `json:"backup,omitempty"`
	ContractMode      string            `json:"contract_mode"`
	DriftCheck        string            `json:"drift_check,omitempty"`
	SelfHeal          *bool             `json:"self_heal,omitempty"`
	Unresolved        []string          `json:"unresolved,omitempty"`
	// Contract is what the server exposed when it was last verified; nil
	// when no contract was recorded.
	Contract *contract.Contract `json:"contract"`
}

type artifactDoc struct {
	URL     string `json:"url"`
	SHA256  string `json:"sha256"`
	Extract bool   `json:"extract"`
}

type portDoc struct {
	Name     string `json:"name"`
	Number   int    `json:"number"`
	Protocol string `json:"protocol"`
}

// endpointDoc is something served on a port that a check reaches: the MCP
// endpoint of an mcp check, the path of an http check.
type endpointDoc struct {
	Kind       string `json:"kind"` // mcp | http
	Check      string `json:"check"`
	Port       string `json:"port"`
	PortNumber int    `json:"port_number,omitempty"`
	Path       string `json:"path"`
	Transport  string `json:"transport,omitempty"`
}

type envDoc struct {
	Name      string `json:"name"`
	Value     string `json:"value"`
	Sensitive bool   `json:"sensitive,omitempty"`
}

type configFileDoc struct {
	Path      string `json:"path"`
	Mode      string `json:"mode"`
	Sensitive bool   `json:"sensitive,omitempty"`
	// Content is the file's content; empty when it is sensitive or not
	// known yet.
	Content string `json:"content,omitempty"`
	Known   bool   `json:"known"`
}

type limitsDoc struct {
	CPU    string `json:"cpu,omitempty"`
	Memory string `json:"memory,omitempty"`
}

type volumeDoc struct {
	Name   string `json:"name"`
	Path   string `json:"path"`
	Size   string `json:"size,omitempty"`
	Source string `json:"source,omitempty"`
}

type requireDoc struct {
	Server  string `json:"server"`
	Version string `json:"version"`
}

type checkDoc struct {
	Name         string `json:"name"`
	Kind         string `json:"kind"`
	What         string `json:"what"` // one line for a person
	Interval     string `json:"interval"`
	Timeout      string `json:"timeout"`
	InitialDelay string `json:"initial_delay,omitempty"`
	Success      int    `json:"success_threshold"`
	Failure      int    `json:"failure_threshold"`
}

type rolloutDoc struct {
	Strategy         string   `json:"strategy"`
	MaxUnavailable   string   `json:"max_unavailable"`
	MaxSurge         string   `json:"max_surge"`
	CanarySteps      []string `json:"canary_steps,omitempty"`
	VerifyFor        string   `json:"verify_for"`
	ProgressDeadline string   `json:"progress_deadline"`
	AutoRollback     bool     `json:"auto_rollback"`
	BackupBefore     string   `json:"backup_before"`
}

type hooksDoc struct {
	PreDeploy  string `json:"pre_deploy,omitempty"`
	Migrate    string `json:"migrate,omitempty"`
	PostDeploy string `json:"post_deploy,omitempty"`
	Timeout    string `json:"timeout"`
}

type scalingDoc struct {
	Min             int         `json:"min"`
	Max             int         `json:"max"`
	CPUPercent      int         `json:"cpu_percent,omitempty"`
	MemoryPercent   int         `json:"memory_percent,omitempty"`
	Metrics         []metricDoc `json:"metrics,omitempty"`
	ScaleUpWindow   string      `json:"scale_up_window"`
	ScaleDownWindow string      `json:"scale_down_window"`
}

type metricDoc struct {
	Name   string `json:"name"`
	Port   string `json:"port"`
	Path   string `json:"path"`
	Target string `json:"target"`
}

type backupDoc struct {
	Schedule    string   `json:"schedule"`
	KeepCount   int      `json:"keep_count,omitempty"`
	KeepAge     string   `json:"keep_age,omitempty"`
	Paths       []string `json:"paths,omitempty"`
	Command     string   `json:"command,omitempty"`
	Destination string   `json:"destination"`
}

// buildModel gathers the documentation of cfg and the contracts.
func buildModel(cfg *spec.Config, contracts map[string]*contract.Contract, title string) *fleetDoc {
	f := &fleetDoc{Title: title, Env: cfg.Env, Providers: []providerDoc{}, Servers: []*serverDoc{}}
	for _, key := range sortedKeys(cfg.Providers) {
		f.Providers = append(f.Providers, providerOf(cfg.Providers[key]))
	}
	for _, name := range sortedKeys(cfg.Windows) {
		w := cfg.Windows[name]
		wd := windowDoc{Name: w.Name, Action: w.Action, Schedule: w.Schedule, Duration: duration(w.Duration), Timezone: w.Timezone}
		for _, r := range w.Servers {
			wd.Servers = append(wd.Servers, r.Name)
		}
		f.Windows = append(f.Windows, wd)
	}
	for _, name := range cfg.ServerNames() {
		f.Servers = append(f.Servers, serverOf(cfg.Servers[name], contracts[name]))
	}
	return f
}

func providerOf(p *spec.Provider) providerDoc {
	d := providerDoc{Key: p.Key(), Type: p.Type, Settings: map[string]string{}}
	set := func(k, v string) {
		if v != "" {
			d.Settings[k] = v
		}
	}
	switch {
	case p.Process != nil:
		set("work_dir", p.Process.WorkDir)
		set("stop_timeout", duration(p.Process.StopTimeout))
		set("host", p.Process.Host)
	case p.Docker != nil:
		set("host", safeURL(p.Docker.Host))
		set("api_version", p.Docker.APIVersion)
		set("network", p.Docker.Network)
		set("pull_policy", p.Docker.PullPolicy)
		for _, r := range p.Docker.Registries {
			set("registry."+r.Host, "credentials of "+r.Username) // never the password
		}
		if t := p.Docker.TLS; t != nil {
			set("tls.ca_file", t.CAFile)
			set("tls.cert_file", t.CertFile)
			set("tls.key_file", t.KeyFile)
		}
	case p.Systemd != nil:
		set("unit_dir", p.Systemd.UnitDir)
		set("user_mode", strconv.FormatBool(p.Systemd.UserMode))
		set("artifact_dir", p.Systemd.ArtifactDir)
		set("keep_artifacts", strconv.Itoa(p.Systemd.KeepArtifacts))
		set("user", p.Systemd.User)
	case p.Kubernetes != nil:
		set("kubeconfig", p.Kubernetes.Kubeconfig)
		set("context", p.Kubernetes.Context)
		set("namespace", p.Kubernetes.Namespace)
		set("in_cluster", strconv.FormatBool(p.Kubernetes.InCluster))
		set("checks_via", p.Kubernetes.ChecksVia)
	}
	if len(d.Settings) == 0 {
		d.Settings = nil
	}
	return d
}

func serverOf(s *spec.Server, c *contract.Contract) *serverDoc {
	d := &serverDoc{
		Name:              s.Name,
		Provider:          s.Provider,
		ProviderType:      providerType(s),
		Version:           s.Version,
		VersionConstraint: s.VersionConstraint,
		Image:             s.Image,
		Command:           spec.Values(s.Command),
		Args:              spec.Values(s.Args),
		WorkDir:           s.WorkDir,
		User:              s.User,
		Replicas:          s.Replicas,
		Labels:            s.Labels,
		Selector:          s.Selector,
		ContractMode:      s.Contract,
		DriftCheck:        s.Drift,
		SelfHeal:          s.SelfHeal,
		Unresolved:        s.Unresolved,
		Contract:          c,
	}
	if len(d.Command) == 0 {
		d.Command = nil
	}
	if len(d.Args) == 0 {
		d.Args = nil
	}
	if a := s.Artifact; a != nil {
		d.Artifact = &artifactDoc{URL: safeURL(a.URL), SHA256: a.SHA256, Extract: a.Extract}
	}
	for _, p := range s.Ports {
		d.Ports = append(d.Ports, portDoc{Name: p.Name, Number: p.Number, Protocol: p.Protocol})
	}
	for _, k := range sortedKeys(s.Env) {
		v := s.Env[k]
		d.Env = append(d.Env, envDoc{Name: k, Value: v.String(), Sensitive: v.IsSensitive()})
	}
	files := slices.Clone(s.ConfigFiles)
	slices.SortStableFunc(files, func(a, b *spec.ConfigFile) int { return strings.Compare(a.Path, b.Path) })
	for _, cf := range files {
		fd := configFileDoc{Path: cf.Path, Mode: fmt.Sprintf("%04o", cf.Mode), Sensitive: cf.Content.IsSensitive(), Known: cf.Content.IsKnown()}
		if !fd.Sensitive && fd.Known {
			fd.Content = cf.Content.String()
		}
		d.ConfigFiles = append(d.ConfigFiles, fd)
	}
	if r := s.Resources; r != nil && (r.MilliCPU > 0 || r.MemoryBytes > 0) {
		d.Limits = &limitsDoc{CPU: cpu(r.MilliCPU), Memory: bytesText(r.MemoryBytes)}
	}
	for _, v := range s.Volumes {
		d.Volumes = append(d.Volumes, volumeDoc{Name: v.Name, Path: v.Path, Size: bytesText(v.SizeBytes), Source: v.Source})
	}
	for _, r := range s.DependsOn {
		d.DependsOn = append(d.DependsOn, r.Name)
	}
	for _, r := range s.Requires {
		d.Requires = append(d.Requires, requireDoc{Server: r.Server, Version: r.Version})
	}
	for _, c := range s.Checks {
		d.Checks = append(d.Checks, checkOf(s, c))
		if e, ok := endpointOf(s, c); ok {
			d.Endpoints = append(d.Endpoints, e)
		}
	}
	d.Rollout = rolloutOf(s.Rollout)
	if h := s.Hooks; h != nil {
		d.Hooks = &hooksDoc{
			PreDeploy: command(h.PreDeploy), Migrate: command(h.Migrate), PostDeploy: command(h.PostDeploy),
			Timeout: duration(h.Timeout),
		}
	}
	if sc := s.Scaling; sc != nil {
		d.Scaling = &scalingDoc{
			Min: sc.Min, Max: sc.Max, CPUPercent: sc.CPUPercent, MemoryPercent: sc.MemoryPercent,
			ScaleUpWindow: duration(sc.ScaleUpWindow), ScaleDownWindow: duration(sc.ScaleDownWindow),
		}
		for _, m := range sc.Metrics {
			d.Scaling.Metrics = append(d.Scaling.Metrics, metricDoc{
				Name: m.Name, Port: m.Port, Path: m.Path, Target: strconv.FormatFloat(m.Target, 'f', -1, 64),
			})
		}
	}
	if b := s.Backup; b != nil {
		d.Backup = &backupDoc{
			Schedule: b.Schedule, KeepCount: b.KeepCount, KeepAge: durationOrEmpty(b.KeepAge),
			Paths: b.Paths, Command: command(b.Command), Destination: safeURL(b.Destination),
		}
	}
	return d
}

func providerType(s *spec.Server) string {
	if s.ProviderType != "" {
		return s.ProviderType
	}
	t, _, _ := strings.Cut(s.Provider, ".")
	return t
}

func portNumber(s *spec.Server, name string) int {
	for _, p := range s.Ports {
		if p.Name == name {
			return p.Number
		}
	}
	return 0
}

func endpointOf(s *spec.Server, c *spec.Check) (endpointDoc, bool) {
	switch {
	case c.MCP != nil && c.MCP.Transport != "stdio":
		return endpointDoc{Kind: "mcp", Check: c.Name, Port: c.MCP.Port, PortNumber: portNumber(s, c.MCP.Port),
			Path: c.MCP.Path, Transport: c.MCP.Transport}, true
	case c.HTTP != nil:
		return endpointDoc{Kind: "http", Check: c.Name, Port: c.HTTP.Port, PortNumber: portNumber(s, c.HTTP.Port),
			Path: c.HTTP.Path}, true
	}
	return endpointDoc{}, false
}

func checkOf(s *spec.Server, c *spec.Check) checkDoc {
	d := checkDoc{
		Name: c.Name, Kind: c.Kind, Interval: duration(c.Interval), Timeout: duration(c.Timeout),
		InitialDelay: durationOrEmpty(c.InitialDelay), Success: c.SuccessThreshold, Failure: c.FailureThreshold,
	}
	on := func(port string) string {
		if n := portNumber(s, port); n > 0 {
			return fmt.Sprintf("port %s (%d)", port, n)
		}
		return "port " + port
	}
	switch {
	case c.HTTP != nil:
		h := c.HTTP
		status := make([]string, len(h.Status))
		for i, n := range h.Status {
			status[i] = strconv.Itoa(n)
		}
		d.What = fmt.Sprintf("%s %s://…%s on %s answers %s", h.Method, h.Scheme, h.Path, on(h.Port), strings.Join(status, " or "))
		for _, k := range sortedKeys(h.Headers) {
			d.What += fmt.Sprintf("; header %s: %s", k, h.Headers[k].String())
		}
		if h.BodyContains != "" {
			d.What += fmt.Sprintf("; body contains %q", h.BodyContains)
		}
		if h.BodyRegex != "" {
			d.What += fmt.Sprintf("; body matches %q", h.BodyRegex)
		}
	case c.TCP != nil:
		d.What = "accepts connections on " + on(c.TCP.Port)
	case c.Exec != nil:
		d.What = "runs " + command(c.Exec.Command) + ", which exits 0"
	case c.MCP != nil:
		m := c.MCP
		if m.Transport == "stdio" {
			d.What = "MCP over stdio"
		} else {
			d.What = fmt.Sprintf("MCP at %s on %s, %s", m.Path, on(m.Port), m.Transport)
		}
		if m.ProtocolVersion != "" {
			d.What += "; protocol " + m.ProtocolVersion
		}
		if m.CheckVersion {
			d.What += "; serverInfo.version is the desired version"
		}
		for _, l := range []struct {
			what  string
			names []string
		}{{"tools", m.Tools}, {"resources", m.Resources}, {"prompts", m.Prompts}} {
			if len(l.names) > 0 {
				d.What += "; offers " + l.what + " " + strings.Join(l.names, ", ")
			}
		}
		if m.MaxLatency > 0 {
			d.What += "; within " + duration(m.MaxLatency)
		}
		if m.Call != nil {
			d.What += "; calls tool " + m.Call.Tool // never its arguments, which may be secret
			if m.Call.Expect != "" {
				d.What += fmt.Sprintf(" and expects %q", m.Call.Expect)
			}
		}
	}
	return d
}

func rolloutOf(r spec.Rollout) rolloutDoc {
	d := rolloutDoc{
		Strategy:         r.Strategy,
		MaxUnavailable:   intOrPercent(r.MaxUnavailable),
		MaxSurge:         intOrPercent(r.MaxSurge),
		VerifyFor:        duration(r.VerifyFor),
		ProgressDeadline: duration(r.ProgressDeadline),
		AutoRollback:     r.AutoRollback,
		BackupBefore:     r.BackupBefore,
	}
	for _, s := range r.CanarySteps {
		d.CanarySteps = append(d.CanarySteps, intOrPercent(s))
	}
	return d
}

func intOrPercent(v spec.IntOrPercent) string {
	if v.Percent {
		return strconv.Itoa(v.Value) + "%"
	}
	return strconv.Itoa(v.Value)
}

// command renders a command line; sensitive parts show as "(sensitive)".
func command(vs []spec.Value) string {
	return strings.Join(spec.Values(vs), " ")
}

// duration renders d briefly: 1m rather than 1m0s, 14d rather than 336h.
func duration(d time.Duration) string {
	const day = 24 * time.Hour
	if d >= day && d%day == 0 {
		return strconv.FormatInt(int64(d/day), 10) + "d"
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func durationOrEmpty(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return duration(d)
}

// cpu renders thousandths of a core: 1500 → "1.5".
func cpu(milli int64) string {
	if milli <= 0 {
		return ""
	}
	return strconv.FormatFloat(float64(milli)/1000, 'f', -1, 64)
}

// bytesText renders a size with the largest binary unit that divides it.
func bytesText(n int64) string {
	if n <= 0 {
		return ""
	}
	for _, u := range []struct {
		name string
		size int64
	}{{"Ti", 1 << 40}, {"Gi", 1 << 30}, {"Mi", 1 << 20}, {"Ki", 1 << 10}} {
		if n%u.size == 0 {
			return strconv.FormatInt(n/u.size, 10) + u.name
		}
	}
	return strconv.FormatInt(n, 10)
}

// safeURL hides the user information of a URL (https://user:token@host),
// which may be a credential.
func safeURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	u.User = url.User(spec.Redacted)
	return u.String()
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
