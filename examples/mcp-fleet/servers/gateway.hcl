server "gateway" {
  provider = provider.kubernetes.cluster
  version  = var.gateway_version
  image    = "${var.registry}/gateway:${version}"
  replicas = 3
  port     = 8080
  labels   = local.common_labels

  env = {
    UPSTREAM_SEARCH = "http://search.mcp-${var.environment}.svc:8000/mcp"
    UPSTREAM_NOTES  = "http://notes.internal:8410/mcp"
  }

  depends_on = [server.search, server.notes]
  requires "search" {
    version = "~> 1.4"
  }

  check "ready" {
    http {
      path = "/ready"
    }
  }

  rollout {
    strategy          = "rolling"
    max_unavailable   = "25%"
    max_surge         = "25%"
    progress_deadline = "10m"
  }

  scaling {
    min         = 3
    max         = 20
    cpu_percent = 60
  }
}

server "tool-sandbox" {
  provider = provider.process.local
  version  = "0.3.1"
  command  = ["./bin/tool-sandbox", "--listen", "127.0.0.1:$(PORT)"]
  port     = 8600

  check "mcp" {
    mcp {
      transport = "stdio"
      tools     = ["run_python"]
    }
  }
}
