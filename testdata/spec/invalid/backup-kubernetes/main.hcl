provider "kubernetes" "cluster" {}

server "a" {
  provider = provider.kubernetes.cluster
  version  = "1.0.0"
  image    = "registry.example.com/a:${version}"
  volume "data" {
    path = "/data"
  }
  backup {
    schedule = "0 3 * * *"
    paths    = ["/data"]
  }
}
