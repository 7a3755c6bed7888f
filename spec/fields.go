package spec

import (
	"crypto/sha256"
	"encoding/hex"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Field is one leaf of a server's desired state, for diffs and hashes.
type Field struct {
	Path string `json:"path"` // such as "env.DB_PASSWORD" or "checks.health.interval"
	// Value is what a person may see: "(sensitive)" for a sensitive value.
	Value string `json:"value"`
	// Compare is what is compared and hashed: the value, or the digest of a
	// sensitive value.
	Compare   string `json:"compare"`
	Sensitive bool   `json:"sensitive,omitempty"`
	// Runtime is true for fields a replica is made of (image, command, env,
	// config files, ports, resources, volumes...). Changing one replaces
	// replicas; changing any other field (checks, rollout, scaling...)
	// changes only how tend treats the server.
	Runtime bool `json:"runtime,omitempty"`
}

type fieldList struct{ fs []Field }

func (l *fieldList) add(path, v string, runtime bool) {
	l.fs = append(l.fs, Field{Path: path, Value: v, Compare: v, Runtime: runtime})
}

func (l *fieldList) value(path string, v Value, runtime bool) {
	if v.IsSensitive() {
		l.fs = append(l.fs, Field{Path: path, Value: Redacted, Compare: "sha256:" + v.Digest(), Sensitive: true, Runtime: runtime})
		return
	}
	l.add(path, v.String(), runtime)
}

func (l *fieldList) values(path string, vs []Value, runtime bool) {
	for i, v := range vs {
		l.value(path+"["+strconv.Itoa(i)+"]", v, runtime)
	}
}

func (l *fieldList) strs(path string, vs []string, runtime bool) {
	if len(vs) > 0 {
		l.add(path, strings.Join(vs, ", "), runtime)
	}
}

func (l *fieldList) valueMap(path string, m map[string]Value, runtime bool) {
	for _, k := range sortedKeys(m) {
		l.value(path+"."+k, m[k], runtime)
	}
}

func (l *fieldList) strMap(path string, m map[string]string, runtime bool) {
	for _, k := range sortedKeys(m) {
		l.add(path+"."+k, m[k], runtime)
	}
}

func dur(d time.Duration) string { return d.String() }
func itoa(i int) string          { return strconv.Itoa(i) }
func bstr(b bool) string         { return strconv.FormatBool(b) }

func iop(v IntOrPercent) string {
	if v.Percent {
		return itoa(v.Value) + "%"
	}
	return itoa(v.Value)
}

// Fields flattens the server into sorted fields. Two servers are the same
// desired state exactly when their fields are equal.
func (s *Server) Fields() []Field {
	l := &fieldList{fs: make([]Field, 0, 48)}
	l.add("provider", s.Provider, true)
	l.add("version", s.Version, true)
	if s.VersionConstraint != "" {
		l.add("version_constraint", s.VersionConstraint, false)
	}
	if s.Image != "" {
		l.add("image", s.Image, true)
	}
	l.values("command", s.Command, true)
	if s.BuildDigest != "" {
		l.add("build_digest", s.BuildDigest, true)
	}
	l.values("args", s.Args, true)
	if a := s.Artifact; a != nil {
		l.add("artifact.url", a.URL, true)
		l.add("artifact.sha256", a.SHA256, true)
		l.add("artifact.extract", bstr(a.Extract), true)
	}
	if s.WorkDir != "" {
		l.add("work_dir", s.WorkDir, true)
	}
	if s.User != "" {
		l.add("user", s.User, true)
	}
	l.add("replicas", itoa(s.Replicas), false)
	for _, p := range s.Ports {
		l.add("ports."+p.Name, itoa(p.Number)+"/"+p.Protocol, true)
	}
	l.valueMap("env", s.Env, true)
	for _, f := range s.ConfigFiles {
		l.value("config_files."+f.Path, f.Content, true)
		l.add("config_files."+f.Path+".mode", "0"+strconv.FormatUint(uint64(f.Mode), 8), true)
	}
	if r := s.Resources; r != nil {
		if r.MilliCPU > 0 {
			l.add("resources.cpu", strconv.FormatInt(r.MilliCPU, 10)+"m", true)
		}
		if r.MemoryBytes > 0 {
			l.add("resources.memory", strconv.FormatInt(r.MemoryBytes, 10), true)
		}
	}
	for _, v := range s.Volumes {
		l.add("volumes."+v.Name+".path", v.Path, true)
		if v.SizeBytes > 0 {
			l.add("volumes."+v.Name+".size", strconv.FormatInt(v.SizeBytes, 10), true)
		}
		if v.Source != "" {
			l.add("volumes."+v.Name+".source", v.Source, true)
		}
	}
	l.strMap("labels", s.Labels, true)
	l.strMap("selector", s.Selector, false)
	for _, d := range s.DependsOn {
		l.add("depends_on."+d.Name, "true", false)
	}
	for _, r := range s.Requires {
		l.add("requires."+r.Server, r.Version, false)
	}
	for _, c := range s.Checks {
		p := "checks." + c.Name
		l.add(p+".kind", c.Kind, false)
		l.add(p+".interval", dur(c.Interval), false)
		l.add(p+".timeout", dur(c.Timeout), false)
		l.add(p+".initial_delay", dur(c.InitialDelay), false)
		l.add(p+".thresholds", itoa(c.SuccessThreshold)+"/"+itoa(c.FailureThreshold), false)
		switch {
		case c.HTTP != nil:
			h := c.HTTP
			l.add(p+".http", h.Method+" "+h.Scheme+"://"+h.Port+h.Path, false)
			st := make([]string, len(h.Status))
			for i, n := range h.Status {
				st[i] = itoa(n)
			}
			l.add(p+".http.status", strings.Join(st, ","), false)
			l.valueMap(p+".http.headers", h.Headers, false)
			if h.BodyContains != "" {
				l.add(p+".http.body_contains", h.BodyContains, false)
			}
			if h.BodyRegex != "" {
				l.add(p+".http.body_regex", h.BodyRegex, false)
			}
		case c.TCP != nil:
			l.add(p+".tcp.port", c.TCP.Port, false)
		case c.Exec != nil:
			l.values(p+".exec.command", c.Exec.Command, false)
		case c.MCP != nil:
			m := c.MCP
			l.add(p+".mcp", m.Transport+" "+m.Port+m.Path, false)
			l.add(p+".mcp.check_version", bstr(m.CheckVersion), false)
			if m.Transport == "stdio" {
				l.values(p+".mcp.command", m.Command, false)
			}
			if m.ProtocolVersion != "" {
				l.add(p+".mcp.protocol_version", m.ProtocolVersion, false)
			}
			l.strs(p+".mcp.tools", m.Tools, false)
			l.strs(p+".mcp.resources", m.Resources, false)
			l.strs(p+".mcp.prompts", m.Prompts, false)
			if m.MaxLatency > 0 {
				l.add(p+".mcp.max_latency", dur(m.MaxLatency), false)
			}
			if m.Call != nil {
				l.add(p+".mcp.call.tool", m.Call.Tool, false)
				l.value(p+".mcp.call.arguments", m.Call.Arguments, false)
				if m.Call.Expect != "" {
					l.add(p+".mcp.call.expect", m.Call.Expect, false)
				}
			}
		}
	}
	ro := s.Rollout
	l.add("rollout.strategy", ro.Strategy, false)
	l.add("rollout.max_unavailable", iop(ro.MaxUnavailable), false)
	l.add("rollout.max_surge", iop(ro.MaxSurge), false)
	for i, st := range ro.CanarySteps {
		l.add("rollout.canary_steps["+itoa(i)+"]", iop(st), false)
	}
	l.add("rollout.verify_for", dur(ro.VerifyFor), false)
	l.add("rollout.progress_deadline", dur(ro.ProgressDeadline), false)
	if ro.FailAfter != DefaultFailAfter {
		// Only when set otherwise: servers that say nothing keep the
		// hash they had before the setting existed.
		l.add("rollout.fail_after", itoa(ro.FailAfter), false)
	}
	l.add("rollout.auto_rollback", bstr(ro.AutoRollback), false)
	l.add("rollout.backup_before", ro.BackupBefore, false)
	if h := s.Hooks; h != nil {
		l.values("hooks.pre_deploy", h.PreDeploy, false)
		l.values("hooks.migrate", h.Migrate, false)
		l.values("hooks.post_deploy", h.PostDeploy, false)
		l.add("hooks.timeout", dur(h.Timeout), false)
	}
	if rl := s.Reload; rl != nil {
		switch {
		case rl.Signal != "":
			l.add("reload.signal", rl.Signal, false)
		case len(rl.Command) > 0:
			l.values("reload.command", rl.Command, false)
		case rl.HTTPMethod != "":
			l.add("reload.http", rl.HTTPMethod+" "+rl.Port+rl.HTTPPath, false)
		}
		l.add("reload.timeout", dur(rl.Timeout), false)
	}
	if sc := s.Scaling; sc != nil {
		l.add("scaling.min", itoa(sc.Min), false)
		l.add("scaling.max", itoa(sc.Max), false)
		if sc.CPUPercent > 0 {
			l.add("scaling.cpu_percent", itoa(sc.CPUPercent), false)
		}
		if sc.MemoryPercent > 0 {
			l.add("scaling.memory_percent", itoa(sc.MemoryPercent), false)
		}
		for _, m := range sc.Metrics {
			l.add("scaling.metrics."+m.Name, m.Port+m.Path+" target "+strconv.FormatFloat(m.Target, 'g', -1, 64), false)
		}
		l.add("scaling.windows", dur(sc.ScaleUpWindow)+"/"+dur(sc.ScaleDownWindow), false)
	}
	if b := s.Backup; b != nil {
		l.add("backup.schedule", b.Schedule, false)
		l.add("backup.keep", itoa(b.KeepCount)+" / "+dur(b.KeepAge), false)
		l.strs("backup.paths", b.Paths, false)
		l.values("backup.command", b.Command, false)
		if b.Destination != "" {
			l.add("backup.destination", b.Destination, false)
		}
		l.values("backup.restore_command", b.RestoreCommand, false)
		if b.Drill != "" {
			l.add("backup.drill", b.Drill, false)
		}
		if b.EncryptionKey.Reveal() != "" {
			l.value("backup.encryption_key", b.EncryptionKey, false)
		}
		if b.ReadOnly {
			l.add("backup.read_only", "true", false)
		}
		l.add("backup.timeout", dur(b.Timeout), false)
		if s3 := b.S3; s3 != nil {
			l.add("backup.s3", s3.Endpoint+" "+s3.Region+" path_style="+bstr(s3.PathStyle), false)
			if s3.AccessKey.Reveal() != "" {
				l.value("backup.s3.access_key", s3.AccessKey, false)
				l.value("backup.s3.secret_key", s3.SecretKey, false)
			}
		}
	}
	l.add("contract", s.Contract, false)
	if s.ContractCapabilities != nil {
		l.add("contract_capabilities", "["+strings.Join(*s.ContractCapabilities, ", ")+"]", false)
	}
	if s.Drift != "" {
		l.add("drift_check", s.Drift, false)
	}
	if s.SelfHeal != nil {
		l.add("self_heal", bstr(*s.SelfHeal), false)
	}
	sort.Slice(l.fs, func(i, j int) bool { return l.fs[i].Path < l.fs[j].Path })
	return l.fs
}

// RuntimeHash is the hash of the fields a replica is made of. tend records it
// on every object it creates: a replica whose hash differs from the desired
// one is replaced; a change of any other field replaces nothing.
func RuntimeHash(fields []Field) string {
	h := sha256.New()
	for _, f := range fields {
		if !f.Runtime {
			continue
		}
		h.Write([]byte(f.Path))
		h.Write([]byte{0})
		h.Write([]byte(f.Compare))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// FieldsHash is the hash of every field: equal exactly when the desired
// state is equal.
func FieldsHash(fields []Field) string {
	h := sha256.New()
	for _, f := range fields {
		h.Write([]byte(f.Path))
		h.Write([]byte{0})
		h.Write([]byte(f.Compare))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// FieldChange is one changed field between two desired states.
type FieldChange struct {
	Path    string `json:"path"`
	Old     string `json:"old,omitempty"`
	New     string `json:"new,omitempty"`
	Runtime bool   `json:"runtime,omitempty"`
	// Sensitive means Old and New are "(sensitive)": the values changed, and
	// what they are is not shown.
	Sensitive bool `json:"sensitive,omitempty"`
	Added     bool `json:"added,omitempty"`
	Removed   bool `json:"removed,omitempty"`
}

// DiffFields compares two sorted field lists.
func DiffFields(old, cur []Field) []FieldChange {
	var out []FieldChange
	i, j := 0, 0
	for i < len(old) || j < len(cur) {
		switch {
		case j == len(cur) || (i < len(old) && old[i].Path < cur[j].Path):
			o := old[i]
			out = append(out, FieldChange{Path: o.Path, Old: o.Value, Runtime: o.Runtime, Sensitive: o.Sensitive, Removed: true})
			i++
		case i == len(old) || cur[j].Path < old[i].Path:
			c := cur[j]
			out = append(out, FieldChange{Path: c.Path, New: c.Value, Runtime: c.Runtime, Sensitive: c.Sensitive, Added: true})
			j++
		default:
			o, c := old[i], cur[j]
			if o.Compare != c.Compare {
				out = append(out, FieldChange{Path: c.Path, Old: o.Value, New: c.Value, Runtime: o.Runtime || c.Runtime, Sensitive: o.Sensitive || c.Sensitive})
			}
			i++
			j++
		}
	}
	return out
}
