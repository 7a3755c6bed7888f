provider "process" "local" {}

server "api" {
  provider = provider.process.local
  version  = "1.0.0"
  command  = ["./bin/server"]
  depends_on = ["db"]
}

server "db" {
  provider = provider.process.local
  version  = "1.0.0"
  command  = ["./bin/server"]
}
