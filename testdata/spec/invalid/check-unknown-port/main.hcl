provider "process" "local" {}

server "a" {
  provider = provider.process.local
  version  = "1.0.0"
  command  = ["./bin/server"]
  ports = { http = 8080, metrics = 9090 }
  check "metrics" {
    http {
      port = "metric"
      path = "/metrics"
    }
  }
}
