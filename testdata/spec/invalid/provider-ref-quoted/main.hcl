provider "process" "local" {}

server "a" {
  provider = "process.local"
  version  = "1.0.0"
  command  = ["x"]
}
