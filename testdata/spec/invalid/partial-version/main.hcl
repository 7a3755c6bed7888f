provider "process" "local" {}

server "a" {
  provider = provider.process.local
  version  = "1.4"
  command  = ["./bin/server"]
}
