provider "process" "local" {}

server "Search_API" {
  provider = provider.process.local
  version  = "1.0.0"
  command  = ["./bin/server"]
}
