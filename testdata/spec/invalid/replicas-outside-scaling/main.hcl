provider "process" "local" {}

server "a" {
  provider = provider.process.local
  version  = "1.0.0"
  command  = ["./bin/server"]
  replicas = 12
  scaling {
    min         = 2
    max         = 10
    cpu_percent = 70
  }
}
