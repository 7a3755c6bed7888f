provider "process" "local" {}

server "a" {
  provider = provider.process.local
  version  = "1.0.0"
  command  = ["./bin/server"]
  volume "data" {
    path = "/data"
  }
  backup {
    schedule = "0 25 * * *"
    paths    = ["/data"]
  }
}
