provider "process" "local" {}

server "a" {
  provider = provider.process.local
  version  = "1.0.0"
  command  = ["./bin/server"]
  depends_on = [server.b]
}

server "b" {
  provider = provider.process.local
  version  = "1.0.0"
  command  = ["./bin/server"]
  depends_on = [server.c]
}

server "c" {
  provider = provider.process.local
  version  = "1.0.0"
  command  = ["./bin/server"]
  requires "a" {
    version = ">= 1.0"
  }
}
