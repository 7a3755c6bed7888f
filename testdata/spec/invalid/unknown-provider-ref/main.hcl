provider "process" "local" {}

server "a" {
  provider = provider.process.locl
  version  = "1.0.0"
  command  = ["x"]
}
