provider "process" "local" {}

tend {
  promotion {
    from  = "staging"
    soak  = "1h"
    store = "/var/lib/tend-staging"
  }
}

server "soaking" {
  version = "1.5.0"
  command = ["./s"]
  port    = 8000
}

server "failed" {
  version = "1.5.0"
  command = ["./f"]
  port    = 8100
}

server "proven" {
  version = "1.5.0"
  command = ["./p"]
  port    = 8200
}

# Same version, other settings: nothing to promote.
server "settings" {
  version = "1.4.2"
  command = ["./x", "--verbose"]
  port    = 8300
}

# New, and no verdict was given: it waits, saying so.
server "unchecked" {
  version = "1.0.0"
  command = ["./u"]
  port    = 8400
}
