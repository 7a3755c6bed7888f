provider "process" "local" {}

server "a" {
  provider = provider.process.local
  version  = "1.0.0"
  command  = ["./bin/server"]
}

window "nights" {
  schedule = "0 22 * * *"
  duration = "8h"
  timezone = "Europe/Berlinn"
}
