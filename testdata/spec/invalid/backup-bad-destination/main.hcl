server "a" {
  version = "1.0.0"
  command = ["./bin/server"]
  volume "data" {
    path = "/data"
  }
  backup {
    schedule    = "0 3 * * *"
    paths       = ["/data"]
    destination = "s3://Bad_Bucket/x"
    s3 {
      endpoint = "ftp://example.com"
    }
  }
}

server "b" {
  version = "1.0.0"
  command = ["./bin/server"]
  volume "data" {
    path = "/data"
  }
  backup {
    schedule    = "0 3 * * *"
    drill       = "every sunday"
    paths       = ["/data"]
    destination = "relative/dir"
    s3 {
      region = "eu-west-1"
    }
  }
}
