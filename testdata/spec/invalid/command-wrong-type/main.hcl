provider "process" "local" {}

server "a" {
  version = "1.0.0"
  command = "./a --port 80"
}
