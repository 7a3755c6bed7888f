provider "process" "local" {}

server "a" {
  provider = provider.process.local
  version  = "latest"
  command  = ["./bin/server"]
}
