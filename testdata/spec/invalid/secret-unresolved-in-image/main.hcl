provider "docker" "local" {}

server "a" {
  version = "1.0.0"
  image   = "registry.example.com/a:${secret("tag")}"
}
