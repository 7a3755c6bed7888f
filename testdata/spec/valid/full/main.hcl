tend {
  required_version  = ">= 0.1.0"
  poll_interval     = "45s"
  parallelism       = 4
  schedule          = "@hourly"
  self_heal         = true
  prune             = true
  max_prune_percent = 30
}

provider "docker" "edge" {
  host        = "tcp://127.0.0.1:2376"
  api_version = "1.45"
  network     = "mcp"
  pull_policy = "always"
  registry "registry.example.com" {
    username = "deploy"
    password = secret("registry_password")
  }
  tls {
    ca_file   = "/etc/tend/ca.pem"
    cert_file = "/etc/tend/cert.pem"
    key_file  = "/etc/tend/key.pem"
  }
}

provider "systemd" "hosts" {
  user_mode      = true
  unit_dir       = "/home/mcp/.config/systemd/user"
  artifact_dir   = "/home/mcp/tend"
  keep_artifacts = 5
}

provider "kubernetes" "prod" {
  kubeconfig = "/etc/tend/kubeconfig"
  context    = "prod"
  namespace  = "mcp"
}

server "db" {
  provider = provider.docker.edge
  version  = "3.4.0"
  image    = "registry.example.com/db:${version}"
  port     = 5432
  volume "data" {
    path   = "/var/lib/db"
    size   = "10Gi"
    source = "/srv/db"
  }
  backup {
    schedule    = "0 3 * * *"
    keep        = { count = 30, age = "30d" }
    paths       = ["/var/lib/db/base"]
    command     = ["db-dump", "--all"]
    destination = "file:///var/backups/db"
  }
  rollout {
    strategy      = "recreate"
    backup_before = "major"
  }
}

server "search" {
  provider = provider.docker.edge
  version  = "1.4.2"
  image    = "registry.example.com/search:${version}"
  args     = ["--mode", "fast"]
  replicas = 2
  ports    = { http = 8000, metrics = 9100 }
  user     = "1000"
  labels   = { team = "search" }
  selector = { role = "edge" }
  env = {
    MCP_ENV = "production"
  }
  config_file "/etc/mcp/config.yaml" {
    content = yamlencode({ rate_limiting = { enabled = true, max_requests = 100, window = 60 } })
    mode    = "0640"
  }
  resources {
    cpu    = 1.5
    memory = "512Mi"
  }
  depends_on = [server.db]
  requires "db" {
    version = ">= 3.0, < 4.0"
  }
  check "health" {
    http {
      port          = "http"
      path          = "/health"
      method        = "GET"
      scheme        = "http"
      headers       = { Accept = "application/json" }
      status        = [200, 204]
      body_contains = "ok"
      body_regex    = "\\\"status\\\":\\s*\\\"ok\\\""
    }
    interval          = "10s"
    timeout           = "3s"
    initial_delay     = "5s"
    success_threshold = 2
    failure_threshold = 4
  }
  check "port" {
    tcp {
      port = "metrics"
    }
  }
  check "script" {
    exec {
      command = ["/app/healthcheck", "--quick"]
    }
  }
  check "tools" {
    mcp {
      port             = "http"
      path             = "/mcp"
      transport        = "sse"
      protocol_version = "2025-06-18"
      check_version    = false
      tools            = ["search", "fetch"]
      resources        = ["index://stats"]
      prompts          = ["summarize"]
      max_latency      = "1500ms"
      call {
        tool      = "search"
        arguments = { query = "tend", limit = 1 }
        expect    = "results"
      }
    }
  }
  rollout {
    strategy          = "canary"
    canary_steps      = [1, "50%", "100%"]
    max_unavailable   = "25%"
    max_surge         = 1
    verify_for        = "1m"
    progress_deadline = "10m"
    fail_after        = 5
    auto_rollback     = false
  }
  hooks {
    pre_deploy  = ["/app/search", "check-config"]
    migrate     = ["/app/search", "migrate"]
    post_deploy = ["/app/search", "warm-cache"]
    timeout     = "2m"
  }
  scaling {
    min               = 2
    max               = 8
    cpu_percent       = 70
    memory_percent    = 80
    scale_up_window   = "30s"
    scale_down_window = "10m"
    metric "inflight" {
      port   = "metrics"
      path   = "/metrics"
      target = 42.5
    }
  }
  contract    = "enforce"
  drift_check = "0 2 * * *"
  self_heal   = false

  contract_capabilities = ["sampling", "roots"]
}

server "gateway" {
  provider = provider.kubernetes.prod
  version  = "2.0.0"
  image    = "registry.example.com/gateway:${version}"
  port     = 8080
  depends_on = [server.search]
}

server "notes" {
  provider = provider.systemd.hosts
  version  = "1.1.0"
  command  = ["/home/mcp/tend/notes/${version}/mcp-notes"]
  work_dir = "/home/mcp/notes"
  port     = 8410
  artifact {
    url     = "https://releases.example.com/notes/${version}/notes.tar.gz"
    sha256  = "3f2a94c1d0b2e6b7a81f5c3e9d4b6a7c8e9f0a1b2c3d4e5f60718293a4b5c6d7"
    extract = true
  }
}

window "nights" {
  schedule = "0 22 * * *"
  duration = "8h"
  action   = "allow"
  servers  = [server.search, server.gateway]
  timezone = "UTC"
}

notify "ops" {
  url     = "https://hooks.example.com/tend"
  events  = ["failure", "rollback"]
  format  = "slack"
  headers = { X-Team = "ops" }
  servers = [server.search]
}
