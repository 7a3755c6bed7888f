provider "process" "local" {}

server "a" {
  version = "1.0.0"
}
