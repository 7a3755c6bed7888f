// Package fleetgen writes state repositories of any size, for benchmarks
// and for people who want to measure tend on a large fleet with the CLI
// (go run ./hack/genfleet -servers 5000 -out /tmp/fleet).
//
// The servers are realistic rather than minimal: env with a secret, a
// rendered config file, checks, a rollout block, dependencies with version
// pins, labels; a quarter of them scale and back up. FilesOn "null" writes
// the same fleet for the null provider, which runs nothing (go run
// ./hack/genfleet -provider null): without the checks, scaling and backups
// it refuses, and without verify_for, so that an apply of the whole fleet
// measures tend rather than waiting.
package fleetgen

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// PerFile is how many servers go into one file.
const PerFile = 50

// Files returns the repository as file name → content, on the process
// provider.
func Files(servers int) map[string][]byte { return FilesOn(servers, "process") }

// FilesOn returns the repository with its servers on a provider of type
// typ: "process" or "null".
func FilesOn(servers int, typ string) map[string][]byte {
	null := typ == "null"
	files := map[string][]byte{
		"tend.hcl": []byte(`tend {
  required_version = ">= 0.1.0"
  parallelism      = 20
}

variable "environment" {
  type    = string
  default = "production"
}

variable "registry" {
  type    = string
  default = "registry.example.com/mcp"
}

locals {
  labels = { team = "platform", environment = var.environment }
}

provider "` + typ + `" "local" {}
`),
	}
	for start := 0; start < servers; start += PerFile {
		var b strings.Builder
		for i := start; i < min(start+PerFile, servers); i++ {
			writeServer(&b, i, null)
		}
		files[fmt.Sprintf("servers/group-%04d.hcl", start/PerFile)] = []byte(b.String())
	}
	return files
}

func writeServer(b *strings.Builder, i int, null bool) {
	name := fmt.Sprintf("svc-%05d", i)
	typ := "process"
	if null {
		typ = "null"
	}
	fmt.Fprintf(b, `server %q {
  provider = provider.%s.local
  version  = "1.%d.%d"
  command  = ["./bin/mcp-server", "--name", %q, "--port", "$(PORT)"]
  replicas = %d
  port     = %d
  labels   = merge(local.labels, { shard = "%d" })

  env = {
    MCP_ENV     = var.environment
    SERVER_NAME = %q
    API_TOKEN   = secret("api_token")
  }

  config_file "config.yaml" {
    content = yamlencode({ workers = %d, rate_limiting = { enabled = true, max_requests = 100, window = 60 } })
  }
`, name, typ, i%10, i%7, name, 1+i%3, 10000+i*4, i%16, name, 2+i%4)
	if null {
		b.WriteString(`
  rollout {
    strategy        = "rolling"
    max_unavailable = 1
  }
`)
	} else {
		b.WriteString(`
  check "health" {
    http {
      path = "/health"
    }
    interval = "5s"
    timeout  = "2s"
  }

  rollout {
    strategy        = "rolling"
    max_unavailable = 1
    verify_for      = "10s"
  }
`)
	}
	if i > 0 && i%5 != 0 {
		dep := fmt.Sprintf("svc-%05d", i-i%5)
		fmt.Fprintf(b, `
  depends_on = [server.%s]
  requires %q {
    version = ">= 1.0, < 2.0"
  }
`, dep, dep)
	}
	if i%4 == 0 {
		b.WriteString(`
  volume "data" {
    path = "/data"
  }
`)
	}
	if i%4 == 0 && !null {
		b.WriteString(`
  scaling {
    min         = 1
    max         = 3
    cpu_percent = 70
  }

  backup {
    schedule = "0 3 * * *"
    keep     = { count = 7, age = "7d" }
    paths    = ["/data"]
  }
`)
	}
	b.WriteString("}\n\n")
}

// Write writes the repository into dir, on the process provider.
func Write(dir string, servers int) error { return WriteOn(dir, servers, "process") }

// WriteOn writes the repository into dir, on a provider of type typ.
func WriteOn(dir string, servers int, typ string) error {
	for name, content := range FilesOn(servers, typ) {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, content, 0o644); err != nil {
			return err
		}
	}
	return nil
}
