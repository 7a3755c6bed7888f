provider "process" "local" {}

server "a" {
  provider = provider.process.local
  version  = "1.0.0"
  command  = ["./bin/server"]
  replicas = 2
  ports    = { http = 8000, metrics = 8001 }
}
