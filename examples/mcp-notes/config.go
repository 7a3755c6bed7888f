package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

const (
	defaultHost       = "127.0.0.1"
	defaultPort       = 8410
	defaultDataDir    = "./data"
	defaultWorkers    = 4
	defaultMaxRequest = 100
	defaultWindow     = 60 // seconds
)

// Config is the resolved configuration: defaults, then the config file, then
// the environment (PORT, NOTES_DATA_DIR), then flags.
type Config struct {
	Host         string
	Port         int
	DataDir      string
	Workers      int
	RateLimiting RateLimitConfig
	// BurnPerRequest is the CPU time every request to /mcp, /sse and /work
	// burns before it is served (set by --burn-per-request only; a
	// load-test aid).
	BurnPerRequest time.Duration
	// SamplingTool adds the tool summarize_with_model, offered only to
	// clients that declare sampling (set by --sampling-tool only).
	SamplingTool bool
}

// RateLimitConfig limits each client IP to MaxRequests per Window seconds.
type RateLimitConfig struct {
	Enabled     bool
	MaxRequests int
	Window      int // seconds
}

func (r RateLimitConfig) String() string {
	if !r.Enabled {
		return "off"
	}
	return fmt.Sprintf("%d requests per %ds per client IP", r.MaxRequests, r.Window)
}

func (c *Config) addr() string { return net.JoinHostPort(c.Host, strconv.Itoa(c.Port)) }

func defaultConfig() Config {
	return Config{
		Host:    defaultHost,
		Port:    defaultPort,
		DataDir: defaultDataDir,
		Workers: defaultWorkers,
		RateLimiting: RateLimitConfig{
			MaxRequests: defaultMaxRequest,
			Window:      defaultWindow,
		},
	}
}

var (
	topLevelKeys  = []string{"port", "host", "workers", "data_dir", "rate_limiting"}
	rateLimitKeys = []string{"enabled", "max_requests", "window"}
)

// loadConfig resolves the configuration from the flags, the environment and
// the config file named by --config.
func loadConfig(fl *flags, lookupEnv func(string) (string, bool)) (Config, error) {
	cfg := defaultConfig()

	if fl.configPath != "" {
		data, err := os.ReadFile(fl.configPath)
		if err != nil {
			return cfg, fmt.Errorf("reading the config file: %w", err)
		}
		if err := applyConfigFile(&cfg, data); err != nil {
			return cfg, fmt.Errorf("config file %s: %w", fl.configPath, err)
		}
	}

	if v, ok := lookupEnv("PORT"); ok && strings.TrimSpace(v) != "" {
		p, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			return cfg, fmt.Errorf("environment variable PORT=%q is not a port number", v)
		}
		cfg.Port = p
	}
	if v, ok := lookupEnv("NOTES_DATA_DIR"); ok && v != "" {
		cfg.DataDir = v
	}

	if fl.set["port"] {
		cfg.Port = fl.port
	}
	if fl.set["host"] {
		cfg.Host = fl.host
	}
	if fl.set["data-dir"] {
		cfg.DataDir = fl.dataDir
	}
	if fl.set["burn-per-request"] {
		cfg.BurnPerRequest = fl.burnPerRequest
	}
	if fl.set["sampling-tool"] {
		cfg.SamplingTool = fl.samplingTool
	}

	return cfg, cfg.validate()
}

func (c *Config) validate() error {
	var errs []error
	if c.Port < 0 || c.Port > 65535 {
		errs = append(errs, fmt.Errorf("port %d is out of range 0-65535", c.Port))
	}
	if strings.TrimSpace(c.Host) == "" {
		errs = append(errs, errors.New("host must not be empty (use 0.0.0.0 to listen on every interface)"))
	}
	if strings.TrimSpace(c.DataDir) == "" {
		errs = append(errs, errors.New("data_dir must not be empty"))
	}
	if c.Workers < 1 {
		errs = append(errs, fmt.Errorf("workers must be at least 1, got %d", c.Workers))
	}
	if c.BurnPerRequest < 0 || c.BurnPerRequest > maxBurn {
		errs = append(errs, fmt.Errorf("burn-per-request must be between 0 and %s, got %s", maxBurn, c.BurnPerRequest))
	}
	if c.RateLimiting.Enabled {
		if c.RateLimiting.MaxRequests < 1 {
			errs = append(errs, fmt.Errorf("rate_limiting.max_requests must be at least 1, got %d", c.RateLimiting.MaxRequests))
		}
		if c.RateLimiting.Window < 1 {
			errs = append(errs, fmt.Errorf("rate_limiting.window must be at least 1 (seconds), got %d", c.RateLimiting.Window))
		}
	}
	return errors.Join(errs...)
}

// applyConfigFile decodes a YAML config file onto cfg. The decoding is
// strict: an unknown or repeated key, or a value of the wrong type, is an
// error that names the key and its line.
func applyConfigFile(cfg *Config, data []byte) error {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil // an empty file leaves the defaults
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("not valid YAML: %w", err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil
	}
	root := doc.Content[0]
	if isNull(root) {
		return nil
	}
	if root.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: the config must be a mapping of keys (%s)", root.Line, strings.Join(topLevelKeys, ", "))
	}
	return eachKey(root, "", topLevelKeys, func(key string, v *yaml.Node) error {
		switch key {
		case "port":
			return decodeInt(v, key, &cfg.Port)
		case "host":
			return decodeString(v, key, &cfg.Host)
		case "workers":
			return decodeInt(v, key, &cfg.Workers)
		case "data_dir":
			return decodeString(v, key, &cfg.DataDir)
		case "rate_limiting":
			if isNull(v) {
				return nil
			}
			if v.Kind != yaml.MappingNode {
				return fmt.Errorf("line %d: rate_limiting must be a mapping with the keys %s", v.Line, strings.Join(rateLimitKeys, ", "))
			}
			rl := &cfg.RateLimiting
			return eachKey(v, "rate_limiting.", rateLimitKeys, func(key string, v *yaml.Node) error {
				full := "rate_limiting." + key
				switch key {
				case "enabled":
					return decodeBool(v, full, &rl.Enabled)
				case "max_requests":
					return decodeInt(v, full, &rl.MaxRequests)
				default: // "window"
					return decodeInt(v, full, &rl.Window)
				}
			})
		}
		return nil
	})
}

// eachKey calls f for every key of the mapping m, after checking that the key
// is one of known and appears once.
func eachKey(m *yaml.Node, prefix string, known []string, f func(key string, v *yaml.Node) error) error {
	seen := map[string]int{}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			return fmt.Errorf("line %d: keys must be plain strings", k.Line)
		}
		key := k.Value
		if !slices.Contains(known, key) {
			return fmt.Errorf("line %d: unknown key %q; the known keys are %s",
				k.Line, prefix+key, prefixed(prefix, known))
		}
		if line, dup := seen[key]; dup {
			return fmt.Errorf("line %d: key %q is repeated (first on line %d)", k.Line, prefix+key, line)
		}
		seen[key] = k.Line
		if err := f(key, v); err != nil {
			return err
		}
	}
	return nil
}

func prefixed(prefix string, keys []string) string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = prefix + k
	}
	return strings.Join(out, ", ")
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.Tag == "!!null" }

// The decode helpers leave dst alone for a null value (a key with nothing
// after it), so that the default stays in place.

func decodeInt(n *yaml.Node, key string, dst *int) error {
	if isNull(n) {
		return nil
	}
	var v int
	if n.Kind != yaml.ScalarNode || n.Decode(&v) != nil {
		return fmt.Errorf("line %d: %s must be an integer, got %s", n.Line, key, describe(n))
	}
	*dst = v
	return nil
}

func decodeBool(n *yaml.Node, key string, dst *bool) error {
	if isNull(n) {
		return nil
	}
	var v bool
	if n.Kind != yaml.ScalarNode || n.Decode(&v) != nil {
		return fmt.Errorf("line %d: %s must be true or false, got %s", n.Line, key, describe(n))
	}
	*dst = v
	return nil
}

func decodeString(n *yaml.Node, key string, dst *string) error {
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: %s must be a string, got %s", n.Line, key, describe(n))
	}
	*dst = n.Value
	return nil
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	}
	return strconv.Quote(n.Value)
}
