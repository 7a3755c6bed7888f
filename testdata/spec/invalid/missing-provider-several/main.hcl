provider "process" "a" {}
provider "process" "b" {}

server "api" {
  version = "1.0.0"
  command = ["x"]
}
