provider "docker" "local" {
  tls {
    ca_file = "/a.pem"
  }
  tls {
    ca_file = "/b.pem"
  }
}
