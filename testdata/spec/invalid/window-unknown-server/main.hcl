provider "process" "local" {}

server "a" {
  provider = provider.process.local
  version  = "1.0.0"
  command  = ["./bin/server"]
}

window "freeze" {
  schedule = "0 0 24 12 *"
  duration = "48h"
  servers  = [server.b]
}
