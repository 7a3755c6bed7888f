tend {
  update {
    schedule = "0 4 * *"
  }
}

server "api" {
  version = "~> 1.4"
  command = ["/opt/builds/api-${version}"]
  update {
    schedule = "at dawn"
  }
}
