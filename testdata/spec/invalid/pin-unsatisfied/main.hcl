provider "process" "local" {}

server "api" {
  provider = provider.process.local
  version  = "1.0.0"
  command  = ["./bin/server"]
  requires "db" {
    version = ">= 3.0, < 4.0"
  }
}

server "db" {
  provider = provider.process.local
  version  = "2.9.1"
  command  = ["./bin/server"]
}
