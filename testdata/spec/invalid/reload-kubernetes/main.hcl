provider "kubernetes" "cluster" {}

server "a" {
  provider = provider.kubernetes.cluster
  version  = "1.0.0"
  image    = "registry.example.com/a:${version}"
  config_file "/etc/a.yaml" {
    content = "level: info\n"
  }
  reload {
    signal = "HUP"
  }
}
