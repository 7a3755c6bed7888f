provider "kubernetes" "cluster" {}

server "a" {
  provider = provider.kubernetes.cluster
  version  = "1.0.0"
  image    = "registry.example.com/a:${version}"
  port     = 8080
  scaling {
    max = 5
    metric "mcp_requests_in_flight" {
      port   = "http"
      path   = "/stats"
      target = 20
    }
  }
}
