package systemd

import (
	"bufio"
	"bytes"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tendhq/tend/providers"
	"github.com/tendhq/tend/spec"
)

// tendSection is the unit file section that carries tend's identity;
// systemd ignores sections whose name starts with "X-".
const tendSection = "X-Tend"

// Restart policy of every unit: whatever ends the main process, systemd
// starts it again after restartDelay, and gives up (the unit fails with
// start-limit-hit) after startLimitBurst starts within startLimitInterval.
const (
	restartDelay       = 1 * time.Second
	startLimitInterval = 30 * time.Second
	startLimitBurst    = 5
)

// unitSpec is everything one unit file says.
type unitSpec struct {
	ID       providers.Identity
	Provider string
	// Argv is the command line; the items at SecretArgs are written as
	// ${NAME} references to the environment file, which holds them.
	Argv        []string
	SecretArgs  map[int]string // index → variable name
	WorkDir     string
	User        string
	Env         map[string]string // the environment without secrets
	EnvFile     string            // secrets, mode 0600
	Resources   *spec.Resources
	Ports       map[string]int
	Artifact    string
	StopTimeout time.Duration
	WantedBy    string
}

// renderUnit writes the unit file. The runtime part (everything before the
// [X-Tend] section) is what systemd runs; the rest is tend's identity.
func renderUnit(u unitSpec) (runtime, identity []byte, err error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Written by tend (managed-by %s) for replica %d of server %s.\n", oneLine(u.ID.ManagedBy), u.ID.Replica, oneLine(u.ID.Server))
	b.WriteString("# Do not edit: tend reports a change made by hand as drift, and the next\n")
	b.WriteString("# apply writes the unit again. Secrets are in the EnvironmentFile.\n\n")

	b.WriteString("[Unit]\n")
	desc := fmt.Sprintf("tend: %s replica %d", u.ID.Server, u.ID.Replica)
	if u.ID.Version != "" {
		desc += " (version " + u.ID.Version + ")"
	}
	fmt.Fprintf(&b, "Description=%s\n", escapeSpecifiers(oneLine(desc)))
	b.WriteString("After=network.target\n")
	fmt.Fprintf(&b, "StartLimitIntervalSec=%d\n", int(startLimitInterval/time.Second))
	fmt.Fprintf(&b, "StartLimitBurst=%d\n", startLimitBurst)

	b.WriteString("\n[Service]\n")
	b.WriteString("Type=exec\n")
	exec, err := execLine(u.Argv, u.SecretArgs)
	if err != nil {
		return nil, nil, err
	}
	fmt.Fprintf(&b, "ExecStart=%s\n", exec)
	if err := checkPath("the working directory", u.WorkDir); err != nil {
		return nil, nil, err
	}
	fmt.Fprintf(&b, "WorkingDirectory=%s\n", escapeSpecifiers(u.WorkDir))
	if u.User != "" {
		if strings.ContainsAny(u.User, " \t\r\n\"'\\") {
			return nil, nil, fmt.Errorf("user %q is not a user name", u.User)
		}
		fmt.Fprintf(&b, "User=%s\n", escapeSpecifiers(u.User))
	}
	keys := sortedKeys(u.Env)
	for _, k := range keys {
		if !validEnvName(k) {
			return nil, nil, fmt.Errorf("environment variable %q: systemd takes names of letters, digits and '_' that do not start with a digit", k)
		}
		fmt.Fprintf(&b, "Environment=%s\n", quoteWord(k+"="+u.Env[k], false))
	}
	if u.EnvFile != "" {
		if err := checkPath("the environment file", u.EnvFile); err != nil {
			return nil, nil, err
		}
		fmt.Fprintf(&b, "EnvironmentFile=%s\n", escapeSpecifiers(u.EnvFile))
	}
	fmt.Fprintf(&b, "Restart=always\nRestartSec=%d\n", int(restartDelay/time.Second))
	stop := u.StopTimeout
	if stop <= 0 {
		stop = stopTimeout
	}
	fmt.Fprintf(&b, "TimeoutStopSec=%dms\n", stop.Milliseconds())
	b.WriteString("CPUAccounting=yes\nMemoryAccounting=yes\n")
	if r := u.Resources; r != nil {
		if r.MilliCPU > 0 {
			fmt.Fprintf(&b, "CPUQuota=%s\n", cpuQuota(r.MilliCPU))
		}
		if r.MemoryBytes > 0 {
			fmt.Fprintf(&b, "MemoryMax=%d\n", r.MemoryBytes)
		}
	}
	if u.WantedBy != "" {
		fmt.Fprintf(&b, "\n[Install]\nWantedBy=%s\n", u.WantedBy)
	}
	runtime = bytes.Clone(b.Bytes())

	var x bytes.Buffer
	fmt.Fprintf(&x, "\n[%s]\n", tendSection)
	for _, kv := range identityFields(u) {
		fmt.Fprintf(&x, "%s=%s\n", kv[0], oneLine(kv[1]))
	}
	return runtime, x.Bytes(), nil
}

func identityFields(u unitSpec) [][2]string {
	out := [][2]string{
		{"ManagedBy", u.ID.ManagedBy},
		{"Server", u.ID.Server},
		{"Replica", strconv.Itoa(u.ID.Replica)},
		{"SpecHash", u.ID.SpecHash},
		{"Revision", u.ID.Revision},
		{"Version", u.ID.Version},
		{"Provider", u.Provider},
	}
	if len(u.Ports) > 0 {
		out = append(out, [2]string{"Ports", formatPorts(u.Ports)})
	}
	if u.Artifact != "" {
		out = append(out, [2]string{"Artifact", u.Artifact})
	}
	return out
}

// cpuQuota is a CPU limit in thousandths of a core as systemd's CPUQuota
// (100% is one core).
func cpuQuota(milli int64) string {
	if milli%10 == 0 {
		return strconv.FormatInt(milli/10, 10) + "%"
	}
	return strconv.FormatInt(milli/10, 10) + "." + strconv.FormatInt(milli%10, 10) + "%"
}

func formatPorts(ports map[string]int) string {
	names := sortedKeys(ports)
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = n + "=" + strconv.Itoa(ports[n])
	}
	return strings.Join(parts, ",")
}

func parsePorts(s string) map[string]int {
	if s == "" {
		return nil
	}
	out := map[string]int{}
	for _, part := range strings.Split(s, ",") {
		name, num, ok := strings.Cut(part, "=")
		if n, err := strconv.Atoi(num); ok && err == nil {
			out[name] = n
		}
	}
	return out
}

// execLine is ExecStart's value: every item quoted, so that systemd passes
// it on as one argument as it is (no $VAR expansion, no specifiers); the
// secret items are ${NAME}, which systemd replaces with one argument from
// the environment file.
func execLine(argv []string, secret map[int]string) (string, error) {
	if len(argv) == 0 {
		return "", fmt.Errorf("the server has no command")
	}
	if _, ok := secret[0]; ok {
		return "", fmt.Errorf("the command's program is a secret: systemd needs it in the unit file, which holds no secrets")
	}
	if !strings.HasPrefix(argv[0], "/") {
		return "", fmt.Errorf("the program %q is not an absolute path", argv[0])
	}
	words := make([]string, len(argv))
	for i, a := range argv {
		if name, ok := secret[i]; ok {
			words[i] = "${" + name + "}"
			continue
		}
		if a == ";" {
			words[i] = `\;` // a lone ";" separates commands
			continue
		}
		words[i] = quoteWord(a, true)
	}
	return strings.Join(words, " "), nil
}

// quoteWord quotes s for a unit file setting that unquotes and C-unescapes
// its words: backslashes, quotes and control characters are escaped, '%'
// (a specifier) doubled, and with dollar '$' doubled too (ExecStart
// expands variables).
func quoteWord(s string, dollar bool) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '\\':
			b.WriteString(`\\`)
		case r == '"':
			b.WriteString(`\"`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '%':
			b.WriteString("%%")
		case r == '$' && dollar:
			b.WriteString("$$")
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// escapeSpecifiers doubles '%' in a setting that expands specifiers.
func escapeSpecifiers(s string) string { return strings.ReplaceAll(s, "%", "%%") }

// oneLine keeps a value on its line.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' {
			return ' '
		}
		return r
	}, s)
}

func checkPath(what, p string) error {
	if !strings.HasPrefix(p, "/") {
		return fmt.Errorf("%s %q is not an absolute path", what, p)
	}
	if strings.ContainsFunc(p, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return fmt.Errorf("%s %q holds control characters, which a unit file cannot", what, p)
	}
	if strings.TrimSpace(p) != p {
		return fmt.Errorf("%s %q ends in spaces, which a unit file drops", what, p)
	}
	return nil
}

// validEnvName is systemd's rule for variable names.
func validEnvName(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		switch {
		case c == '_', c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// renderEnvFile writes the environment file: KEY="VALUE" lines, sorted,
// with the shell's double-quote escapes that systemd understands.
func renderEnvFile(of string, env map[string]string) ([]byte, error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Written by tend: the secret environment of %s (mode 0600).\n", oneLine(of))
	for _, k := range sortedKeys(env) {
		if !validEnvName(k) {
			return nil, fmt.Errorf("environment variable %q: systemd takes names of letters, digits and '_' that do not start with a digit", k)
		}
		b.WriteString(k)
		b.WriteString(`="`)
		for _, r := range env[k] {
			switch r {
			case '\\', '"', '$', '`':
				b.WriteByte('\\')
			}
			b.WriteRune(r)
		}
		b.WriteString("\"\n")
	}
	return b.Bytes(), nil
}

// unitFile is a parsed unit file: its sections' settings, in order.
type unitFile map[string][][2]string

// parseUnitFile reads the sections and settings of a unit file (enough
// for tend's own files; continuation lines are joined).
func parseUnitFile(b []byte) unitFile {
	out := unitFile{}
	section := ""
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	var pending string
	for sc.Scan() {
		line := pending + sc.Text()
		pending = ""
		if strings.HasSuffix(line, `\`) {
			pending = strings.TrimSuffix(line, `\`) + " "
			continue
		}
		line = strings.TrimSpace(line)
		switch {
		case line == "", line[0] == '#', line[0] == ';':
			continue
		case line[0] == '[' && line[len(line)-1] == ']':
			section = line[1 : len(line)-1]
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		out[section] = append(out[section], [2]string{strings.TrimSpace(k), strings.TrimSpace(v)})
	}
	return out
}

// get returns the last value of a setting.
func (f unitFile) get(section, key string) (string, bool) {
	var v string
	found := false
	for _, kv := range f[section] {
		if kv[0] == key {
			v, found = kv[1], true
		}
	}
	return v, found
}

// tendIdentity is what a unit file's [X-Tend] section says.
type tendIdentity struct {
	providers.Identity
	Provider string
	Ports    map[string]int
	Artifact string
}

// identityOf reads the [X-Tend] section; ok is false when the file has
// none (it is not tend's).
func identityOf(f unitFile) (tendIdentity, bool) {
	var id tendIdentity
	if _, ok := f[tendSection]; !ok {
		return id, false
	}
	get := func(k string) string { v, _ := f.get(tendSection, k); return v }
	id.ManagedBy = get("ManagedBy")
	id.Server = get("Server")
	r, err := strconv.Atoi(get("Replica"))
	if err != nil || id.ManagedBy == "" || id.Server == "" {
		return id, false
	}
	id.Replica = r
	id.SpecHash = get("SpecHash")
	id.Revision = get("Revision")
	id.Version = get("Version")
	id.Provider = get("Provider")
	id.Ports = parsePorts(get("Ports"))
	id.Artifact = get("Artifact")
	return id, true
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
