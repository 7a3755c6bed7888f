tend {
  update {
    schedule    = "@daily"
    commit      = true
    signing_key = secret("update_key")
  }
}

server "api" {
  version = "~> 1.4"
  command = ["/opt/builds/api-${version}"]
}
