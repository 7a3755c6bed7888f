tend {
  promotion {
    from  = "staging"
    url   = "https://tend-staging.example.com:8440"
    token = secret("staging_api_token")
  }
}

server "a" {
  version = "1.0.0"
  command = ["./bin/server"]
}
