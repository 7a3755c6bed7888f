provider "process" "local" {}

server "a" {
  provider = provider.process.local
  version  = "1.0.0"
  command  = ["./bin/server"]
  volume "data" {
    path = "/data"
  }
  backup {
    schedule = "0 3 * * *"
    paths    = ["/data"]
    keep     = { count = 30, ages = "30d" }
  }
}
