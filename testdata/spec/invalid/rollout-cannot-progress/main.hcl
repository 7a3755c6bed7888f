provider "process" "local" {}

server "a" {
  provider = provider.process.local
  version  = "1.0.0"
  command  = ["./bin/server"]
  rollout {
    max_unavailable = 0
    max_surge       = 0
  }
}
