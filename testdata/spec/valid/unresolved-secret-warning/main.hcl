server "api" {
  version = "1.2.3"
  command = ["./api"]
  env = {
    DB_PASSWORD = secret("db_password")
  }
}
