# The quickstart fleet: one MCP server (mcp-notes) run as local processes by
# the embedded process provider. `make demo` builds mcp-notes in several
# versions into ./bin and applies this repository.

tend {
  required_version = ">= 0.1.0"
  poll_interval    = "30s"
}

variable "notes_version" {
  type        = string
  default     = "1.0.0"
  description = "The mcp-notes release to run."
}

variable "bin_dir" {
  type        = string
  default     = "bin"
  description = "Where the mcp-notes builds are, one binary per version (make demo passes an absolute path)."
}

provider "process" "local" {
  stop_timeout = "5s"
}

server "notes" {
  provider = provider.process.local
  version  = var.notes_version
  command  = ["${var.bin_dir}/mcp-notes-${version}", "--config", "config.yaml"]
  replicas = 2
  port     = 8410

  env = {
    NOTES_ENV      = "quickstart"
    NOTES_DATA_DIR = "$(TEND_VOLUME_DATA)" # the process provider's host directory for volume "data"
  }

  config_file "config.yaml" {
    content = yamlencode({
      host    = "127.0.0.1"
      workers = 4
      rate_limiting = {
        enabled      = true
        max_requests = 100
        window       = 60
      }
    })
  }

  volume "data" {
    path = "/var/lib/mcp-notes"
  }

  # mcp-notes re-reads its config file on SIGHUP: a change of the config file
  # alone is applied without a restart (the plan says "reload"). A setting it
  # reads only at start (workers, host, port, data_dir) makes its /health fail
  # after the reload, and tend restarts the replicas instead.
  reload {
    signal = "HUP"
  }

  check "health" {
    http {
      path          = "/health"
      body_contains = "ok"
    }
    interval = "1s"
    timeout  = "500ms"
  }

  rollout {
    strategy          = "rolling"
    max_unavailable   = 1
    verify_for        = "3s"
    progress_deadline = "30s"
    auto_rollback     = true
  }

  # tend run backs the notes up every night (to STATE_DIR/backups), keeps
  # the newest 7, and proves on Sundays that the newest one restores.
  backup {
    schedule = "0 3 * * *"
    drill    = "0 4 * * 0"
    keep     = { count = 7 }
    paths    = ["/var/lib/mcp-notes"]
  }
}
