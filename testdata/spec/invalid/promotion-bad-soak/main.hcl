server "a" {
  version = "1.0.0"
  command = ["./bin/server"]
  promotion {
    from  = "staging"
    soak  = "an hour"
    store = "/var/lib/tend-staging"
  }
}

server "b" {
  version = "1.0.0"
  command = ["./bin/server"]
  promotion {
    from  = "staging"
    soak  = 3600
    store = "state/staging"
    token = secret("staging_token")
  }
}
