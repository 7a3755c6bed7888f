provider "docker" "edge" {
  publish_address = "localhost"
  restart_policy  = "sometimes"
}
