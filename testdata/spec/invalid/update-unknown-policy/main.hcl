server "api" {
  version = "~> 1.4"
  command = ["/opt/builds/api-${version}"]
  update {
    schedule = "@daily"
    policy   = "minr"
  }
}
