server "notes" {
  provider = provider.systemd.hosts
  version  = var.notes_version
  command  = ["/opt/tend/notes/${version}/mcp-notes", "--config", "/etc/mcp-notes/config.yaml"]
  replicas = 2
  port     = 8410
  selector = { role = "notes" }
  labels   = local.common_labels

  artifact {
    url     = "https://releases.example.com/mcp-notes/${version}/mcp-notes-linux-amd64.tar.gz"
    sha256  = var.notes_release_sha256
    extract = true
  }

  env = {
    NOTES_API_TOKEN = secret("notes_api_token")
  }

  config_file "/etc/mcp-notes/config.yaml" {
    content = templatefile("templates/notes.yaml.tpl", {
      workers    = local.is_production ? 8 : 2
      rate_limit = local.rate_limit
      data_dir   = "/var/lib/mcp-notes"
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

  resources {
    cpu    = 1
    memory = "256Mi"
  }

  check "health" {
    http {
      path = "/health"
    }
  }

  check "tools" {
    mcp {
      tools = ["add_note", "search_notes", "list_notes"]
    }
  }

  rollout {
    strategy     = "canary"
    canary_steps = [1, "100%"]
    verify_for   = "1m"
  }

  # tend run scales it (systemd has no autoscaler of its own): on CPU, and
  # on the requests each replica is serving, from its /metrics.
  scaling {
    min               = 2
    max               = 4
    cpu_percent       = 70
    scale_down_window = "10m"
    metric "mcp_notes_http_requests_in_flight" {
      target = 20
    }
  }

  # Off the host, encrypted: a lost host's notes come back with
  # `tend backups sync` and `tend restore notes` on a new one.
  backup {
    schedule       = "0 4 * * *"
    drill          = "30 4 * * 0"
    keep           = { count = 14, age = "14d" }
    paths          = ["/var/lib/mcp-notes"]
    destination    = "s3://mcp-fleet-backups/${var.environment}"
    encryption_key = secret("backup_key")
    s3 {
      endpoint   = "https://objects.example.com"
      access_key = "tend-backups"
      secret_key = secret("backup_s3_secret")
      path_style = true
    }
  }
}
