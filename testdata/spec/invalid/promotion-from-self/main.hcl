variable "environment" {
  type = string
}

tend {
  promotion {
    from  = "staging"
    soak  = "1h"
    store = "/var/lib/tend-staging"
  }
}

server "a" {
  version = "1.0.0"
  command = ["./bin/server"]
}
