# A backup block may come before the volume it copies.
server "db" {
  version = "1.0.0"
  command = ["./db"]
  backup {
    schedule = "@daily"
    paths    = ["/data/base"]
  }
  volume "data" {
    path = "/data"
  }
}
