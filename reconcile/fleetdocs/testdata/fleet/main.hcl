# A small fleet for the golden tests of tend docs: mcp-notes on the process
# provider (its contract is in ../contracts/notes.json), a search server on
# Docker that was never verified, and secrets that must not appear anywhere.

variable "search_api_key" {
  type      = string
  sensitive = true
  default   = "var-key-0000-sensitive"
}

provider "process" "local" {
  stop_timeout = "10s"
}

provider "docker" "edge" {
  host        = "unix:///var/run/docker.sock"
  network     = "mcp"
  pull_policy = "missing"
}

server "notes" {
  provider = provider.process.local
  version  = "1.4.0"
  command  = ["./bin/mcp-notes-${version}", "--config", "config.yaml", "--token", secret("notes_token")]
  port     = 8410
  contract = "enforce"

  env = {
    NOTES_DATA_DIR = "/var/lib/mcp-notes"
    NOTES_TOKEN    = secret("notes_token")
  }

  config_file "config.yaml" {
    content = yamlencode({ workers = 4, rate_limiting = { enabled = true, max_requests = 100, window = 60 } })
  }

  config_file "credentials.json" {
    content = jsonencode({ token = secret("notes_token") })
  }

  volume "data" {
    path = "/var/lib/mcp-notes"
  }

  resources {
    cpu    = 0.5
    memory = "256Mi"
  }

  check "health" {
    http {
      path    = "/health"
      headers = { Authorization = "Bearer ${secret("notes_token")}" }
    }
  }

  check "tools" {
    mcp {
      tools = ["add_note", "search_notes"]
      call {
        tool      = "search_notes"
        arguments = { query = secret("notes_token") }
      }
    }
  }

  rollout {
    strategy     = "canary"
    canary_steps = [1, "100%"]
    verify_for   = "1m"
  }

  backup {
    schedule = "0 4 * * *"
    keep     = { count = 14, age = "14d" }
    paths    = ["/var/lib/mcp-notes"]
  }
}

server "search" {
  provider = provider.docker.edge
  version  = "1.4.2"
  image    = "registry.example.com/mcp/search:${version}"
  replicas = 2
  ports    = { http = 8000, metrics = 9100 }
  labels   = { team = "search", tier = "mcp" }

  env = {
    API_KEY   = var.search_api_key
    LOG_LEVEL = "info"
  }

  depends_on = [server.notes]
  requires "notes" {
    version = "~> 1.4"
  }

  check "mcp" {
    mcp {
      port      = "http"
      path      = "/sse"
      transport = "sse"
      tools     = ["search"]
    }
  }

  check "metrics" {
    tcp {
      port = "metrics"
    }
  }

  rollout {
    strategy        = "rolling"
    max_unavailable = "25%"
  }

  hooks {
    migrate = ["/app/search", "migrate", "--key", var.search_api_key]
  }

  scaling {
    min         = 2
    max         = 6
    cpu_percent = 70
  }
}

window "nights" {
  schedule = "0 22 * * *"
  duration = "8h"
  action   = "allow"
  servers  = [server.search]
  timezone = "UTC"
}
