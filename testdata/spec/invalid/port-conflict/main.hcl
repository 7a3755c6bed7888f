provider "process" "local" {}

server "a" {
  provider = provider.process.local
  version  = "1.0.0"
  command  = ["./bin/server"]
  port     = 8000
  replicas = 3
}

server "b" {
  provider = provider.process.local
  version  = "1.0.0"
  command  = ["./bin/server"]
  port     = 8002
}
