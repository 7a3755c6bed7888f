tend {
  promotion {
    from  = "staging"
    url   = "ftp://tend-staging.example.com"
    token = secret("staging_token")
    store = "/var/lib/tend-staging"
  }
}

server "a" {
  version = "1.0.0"
  command = ["./bin/server"]
}
