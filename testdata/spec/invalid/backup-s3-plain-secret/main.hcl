server "a" {
  version = "1.0.0"
  command = ["./bin/server"]
  volume "data" {
    path = "/data"
  }
  backup {
    schedule       = "0 3 * * *"
    paths          = ["/data"]
    destination    = "s3://backups/tend"
    encryption_key = "hunter22"
    s3 {
      endpoint   = "http://127.0.0.1:9000"
      access_key = "tend"
      secret_key = "in-the-repo"
    }
  }
}
