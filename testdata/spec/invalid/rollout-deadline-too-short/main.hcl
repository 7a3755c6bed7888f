provider "process" "local" {}

server "a" {
  provider = provider.process.local
  version  = "1.0.0"
  command  = ["./bin/server"]
  rollout {
    verify_for        = "5m"
    progress_deadline = "1m"
  }
}
