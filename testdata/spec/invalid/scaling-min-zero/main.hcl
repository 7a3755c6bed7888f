provider "process" "local" {}

server "a" {
  provider = provider.process.local
  version  = "1.0.0"
  command  = ["./bin/server"]
  port     = 8080
  scaling {
    min         = 0
    max         = 3
    cpu_percent = 70
  }
}
