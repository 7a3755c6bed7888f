provider "process" "local" {}

server "a" {
  version = null
  command = ["./a"]
}

window "w" {
  schedule = null
  duration = "1h"
}
