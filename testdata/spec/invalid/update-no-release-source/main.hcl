server "api" {
  version = "~> 1.4"
  command = ["/usr/local/bin/api"]
  update {
    schedule = "@daily"
  }
}
