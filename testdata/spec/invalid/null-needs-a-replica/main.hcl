provider "null" "ci" {}

server "search" {
  version  = "1.4.2"
  image    = "registry.example.com/mcp/search:${version}"
  port     = 8000
  replicas = 2

  check "health" {
    http {
      path = "/health"
    }
  }

  hooks {
    migrate = ["./migrate"]
  }

  scaling {
    min         = 1
    max         = 4
    cpu_percent = 70
  }

  volume "data" {
    path = "/data"
  }

  backup {
    schedule = "0 3 * * *"
    paths    = ["/data"]
  }
}
