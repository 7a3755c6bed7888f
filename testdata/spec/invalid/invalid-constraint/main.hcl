provider "process" "local" {}

server "api" {
  provider = provider.process.local
  version  = "1.0.0"
  command  = ["./bin/server"]
  requires "db" {
    version = ">>= 3.0"
  }
}

server "db" {
  provider = provider.process.local
  version  = "3.1.0"
  command  = ["./bin/server"]
}
