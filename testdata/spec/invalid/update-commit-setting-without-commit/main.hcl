tend {
  update {
    schedule = "@daily"
    commit   = true
    author   = "tend bot <tend@example.com>"
  }
}

server "api" {
  version = "~> 1.4"
  command = ["/opt/builds/api-${version}"]
  update {
    commit = false
    branch = "tend/updates"
  }
}
