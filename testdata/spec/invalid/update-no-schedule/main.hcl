tend {
  update {
    policy = "minor"
  }
}

server "api" {
  version = "~> 1.4"
  command = ["/opt/builds/api-${version}"]
}
