server "api" {
  version = "~> 1.4"
  command = ["/opt/builds/api-${version}"]
  update {
    schedule = "@daily"
    commit   = true
    branch   = "refs/heads/main"
    author   = "tend@example.com"
  }
}
