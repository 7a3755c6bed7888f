provider "docker" "local" {}

server "search" {
  version = "~> 1.4"
  image   = "registry.example.com/search:${version}"
  port    = 8000
}
