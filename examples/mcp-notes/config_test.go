package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func envMap(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func mustParseFlags(t *testing.T, args ...string) *flags {
	t.Helper()
	fl, err := parseFlags(args, io.Discard)
	if err != nil {
		t.Fatalf("parseFlags(%q): %v", args, err)
	}
	return fl
}

func TestConfigDefaults(t *testing.T) {
	cfg, err := loadConfig(mustParseFlags(t), envMap(nil))
	if err != nil {
		t.Fatal(err)
	}
	want := Config{Host: "127.0.0.1", Port: 8410, DataDir: "./data", Workers: 4,
		RateLimiting: RateLimitConfig{Enabled: false, MaxRequests: 100, Window: 60}}
	if cfg != want {
		t.Errorf("defaults = %+v, want %+v", cfg, want)
	}
}

func TestConfigPrecedence(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(`
port: 9001
host: 0.0.0.0
workers: 8
data_dir: /from/file
rate_limiting:
  enabled: true
  max_requests: 10
`), 0o644); err != nil {
		t.Fatal(err)
	}

	// The file over the defaults; a window left out keeps its default.
	cfg, err := loadConfig(mustParseFlags(t, "--config", path), envMap(nil))
	if err != nil {
		t.Fatal(err)
	}
	want := Config{Host: "0.0.0.0", Port: 9001, DataDir: "/from/file", Workers: 8,
		RateLimiting: RateLimitConfig{Enabled: true, MaxRequests: 10, Window: 60}}
	if cfg != want {
		t.Errorf("from the file: %+v, want %+v", cfg, want)
	}

	// The environment over the file.
	env := envMap(map[string]string{"PORT": "9002", "NOTES_DATA_DIR": "/from/env"})
	cfg, err = loadConfig(mustParseFlags(t, "--config", path), env)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Port != 9002 || cfg.DataDir != "/from/env" || cfg.Host != "0.0.0.0" {
		t.Errorf("with the environment: %+v", cfg)
	}

	// Flags over the environment, even when a flag is set to its default.
	cfg, err = loadConfig(mustParseFlags(t, "--config", path, "--port", "8410", "-data-dir", "/from/flag", "--host", "::1"), env)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Port != 8410 || cfg.DataDir != "/from/flag" || cfg.Host != "::1" {
		t.Errorf("with flags: %+v", cfg)
	}
	if got := cfg.addr(); got != "[::1]:8410" {
		t.Errorf("addr() = %q", got)
	}
}

func TestConfigFileEdgeCases(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		check      func(Config) bool
	}{
		{"Empty", "", func(c Config) bool { return c == defaultConfig() }},
		{"OnlyComments", "# nothing here\n", func(c Config) bool { return c == defaultConfig() }},
		{"NullValues", "port:\nrate_limiting:\n", func(c Config) bool { return c == defaultConfig() }},
		{"QuotedPortIsAString", "host: \"8080\"\n", func(c Config) bool { return c.Host == "8080" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := defaultConfig()
			if err := applyConfigFile(&cfg, []byte(tc.yaml)); err != nil {
				t.Fatal(err)
			}
			if !tc.check(cfg) {
				t.Errorf("got %+v", cfg)
			}
		})
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"UnknownKey", "port: 1\nbogus: 2\n", `line 2: unknown key "bogus"; the known keys are port, host, workers, data_dir, rate_limiting`},
		{"UnknownNestedKey", "rate_limiting:\n  enabled: true\n  burst: 3\n", `line 3: unknown key "rate_limiting.burst"`},
		{"RepeatedKey", "port: 1\nport: 2\n", `line 2: key "port" is repeated (first on line 1)`},
		{"WrongTypeInt", "port: eighty\n", `line 1: port must be an integer, got "eighty"`},
		{"WrongTypeBool", "rate_limiting:\n  enabled: maybe\n", `rate_limiting.enabled must be true or false, got "maybe"`},
		{"WindowAsDuration", "rate_limiting:\n  window: 60s\n", `rate_limiting.window must be an integer, got "60s"`},
		{"ListForString", "host: [a, b]\n", "host must be a string, got a list"},
		{"RateLimitingNotAMapping", "rate_limiting: yes\n", "rate_limiting must be a mapping"},
		{"NotAMapping", "- port\n", "the config must be a mapping"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := defaultConfig()
			err := applyConfigFile(&cfg, []byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestConfigValidation(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"PortOutOfRange", []string{"--port", "70000"}, nil, "port 70000 is out of range"},
		{"BadEnvPort", nil, map[string]string{"PORT": "http"}, `environment variable PORT="http"`},
		{"EmptyHost", []string{"--host", ""}, nil, "host must not be empty"},
		{"EmptyDataDir", []string{"--data-dir", ""}, nil, "data_dir must not be empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadConfig(mustParseFlags(t, tc.args...), envMap(tc.env))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v, want it to contain %q", err, tc.want)
			}
		})
	}

	cfg := defaultConfig()
	cfg.Workers = 0
	cfg.RateLimiting = RateLimitConfig{Enabled: true, MaxRequests: 0, Window: 0}
	err := cfg.validate()
	for _, want := range []string{"workers must be at least 1", "rate_limiting.max_requests", "rate_limiting.window"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("validate() = %v, want it to mention %q", err, want)
		}
	}
}

func TestFlags(t *testing.T) {
	if _, err := parseFlags([]string{"--nope"}, io.Discard); err == nil {
		t.Error("an unknown flag is accepted")
	}
	if _, err := parseFlags([]string{"extra"}, io.Discard); err == nil {
		t.Error("a stray argument is accepted")
	}
	fl := mustParseFlags(t, "--version")
	if !fl.showVersion {
		t.Error("--version not seen")
	}
}

// run's exit codes for the cases that end before serving.
func TestRunExitCodes(t *testing.T) {
	var out strings.Builder
	if code := run([]string{"--version"}, &out, io.Discard, envMap(nil)); code != 0 || out.String() != version+"\n" {
		t.Errorf("--version: code %d, output %q", code, out.String())
	}
	if code := run([]string{"--bogus"}, io.Discard, io.Discard, envMap(nil)); code != 2 {
		t.Errorf("an unknown flag: code %d, want 2", code)
	}
	var stderr strings.Builder
	path := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(path, []byte("prot: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code := run([]string{"--config", path}, io.Discard, &stderr, envMap(nil)); code != 2 {
		t.Errorf("a bad config: code %d, want 2", code)
	}
	if !strings.Contains(stderr.String(), `unknown key "prot"`) {
		t.Errorf("stderr = %q", stderr.String())
	}
}

func TestExampleConfig(t *testing.T) {
	cfg, err := loadConfig(mustParseFlags(t, "--config", "config.example.yaml"), envMap(nil))
	if err != nil {
		t.Fatalf("config.example.yaml: %v", err)
	}
	if cfg != defaultConfig() {
		t.Errorf("config.example.yaml = %+v; it should show the defaults, %+v", cfg, defaultConfig())
	}
}
