provider "docker" "local" {}

server "a" {
  version = "1.0.0"
  port    = 8080
}
