provider "process" "local" {}

server "a" {
  provider = provider.process.local
  version  = "1.0.0"
  command  = ["./bin/server"]
}

window "Business Hours" {
  schedule = "0 8 * * 1-5"
  duration = "10h"
}
