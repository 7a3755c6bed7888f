tend {
  promotion {
    from  = "staging"
    soak  = "1h"
    url   = "https://tend-staging.example.com:8440"
    token = "s3cr3t-in-the-repo"
  }
}

server "a" {
  version = "1.0.0"
  command = ["./bin/server"]
  promotion {
    from = "staging"
    url  = "https://tend-staging.example.com:8440"
  }
}
