provider "process" "local" {}

server "a" {
  provider = provider.process.local
  version  = "1.0.0"
  command  = ["./bin/server"]
  ports = { http = 8000, metrics = 9100 }
  scaling {
    max = 3
    metric "inflight" {
      port   = "metric"
      target = 10
    }
    metric "inflight" {
      target = 20
    }
  }
}
