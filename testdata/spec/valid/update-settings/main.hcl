tend {
  update {
    schedule = "0 4 * * *"
    policy   = "minor"
    commit   = true
    author   = "tend bot <tend@example.com>"
  }
}

server "api" {
  version = "~> 1.4"
  command = ["/opt/builds/api-${version}"]
  update {
    policy = "patch"
    branch = "tend/updates"
  }
}
