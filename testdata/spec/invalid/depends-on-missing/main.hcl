provider "process" "local" {}

server "api" {
  provider = provider.process.local
  version  = "1.0.0"
  command  = ["./bin/server"]
  depends_on = [server.dbb]
}

server "db" {
  provider = provider.process.local
  version  = "1.0.0"
  command  = ["./bin/server"]
}
