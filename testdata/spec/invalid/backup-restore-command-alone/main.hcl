server "a" {
  version = "1.0.0"
  command = ["./bin/server"]
  volume "data" {
    path = "/data"
  }
  backup {
    schedule        = "0 3 * * *"
    paths           = ["/data"]
    restore_command = ["./bin/server", "load"]
  }
}
