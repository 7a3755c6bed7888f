provider "process" "local" {}

server "api" {
  provider = provider.process.local
  version  = "1.0.0"
  command  = ["./bin/server"]
  requires "cache" {
    version = ">= 1.0"
  }
}
