server "search-index" {
  provider = provider.docker.edge
  version  = "3.2.0"
  image    = "${var.registry}/search-index:${version}"
  port     = 7700
  labels   = local.common_labels

  volume "index" {
    path = "/index"
    size = "50Gi"
  }

  check "health" {
    http {
      path   = "/health"
      status = [200, 204]
    }
  }

  backup {
    schedule = "30 2 * * *"
    keep     = { count = 7 }
    paths    = ["/index"]
  }
}

server "search" {
  provider = provider.docker.edge
  version  = var.search_version
  image    = "${var.registry}/search:${version}"
  replicas = var.search_replicas
  ports    = { http = 8000, metrics = 9100 }
  labels   = merge(local.common_labels, { tier = "mcp" })

  env = {
    MCP_ENV      = var.environment
    INDEX_URL    = "http://search-index:7700"
    DATABASE_URL = "postgres://mcp:${secret("postgres_password")}@postgres:5432/mcp"
    LOG_LEVEL    = local.is_production ? "info" : "debug"
  }

  config_file "/etc/mcp/config.yaml" {
    content = yamlencode({
      rate_limiting = { enabled = true, max_requests = local.rate_limit, window = 60 }
      tools         = ["search", "fetch"]
    })
  }

  depends_on = [server.postgres]
  requires "search-index" {
    version = ">= 3.0, < 4.0"
  }

  resources {
    cpu    = "500m"
    memory = "512Mi"
  }

  check "health" {
    http {
      path          = "/health"
      body_contains = "ok"
    }
    interval          = "5s"
    timeout           = "2s"
    failure_threshold = 3
  }

  check "tools" {
    mcp {
      path  = "/mcp"
      tools = ["search", "fetch"]
      call {
        tool      = "search"
        arguments = { query = "tend", limit = 1 }
      }
      max_latency = "2s"
    }
  }

  rollout {
    strategy          = "rolling"
    max_unavailable   = 1
    max_surge         = 1
    verify_for        = "30s"
    progress_deadline = "5m"
    auto_rollback     = true
  }

  hooks {
    migrate = ["/app/search", "migrate", "--database-url-env", "DATABASE_URL"]
    timeout = "5m"
  }

  scaling {
    min               = 2
    max               = 10
    cpu_percent       = 70
    memory_percent    = 80
    scale_down_window = "10m"
    metric "mcp_requests_in_flight" {
      port   = "metrics"
      target = 50
    }
  }

  contract    = "enforce"
  drift_check = "0 * * * *"
}
