provider "docker" "local" {
  hots = "unix:///var/run/docker.sock"
}
