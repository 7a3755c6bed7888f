provider "process" "local" {}

server "db" {
  version  = "3.1.0"
  command  = ["./db"]
  port     = 5432
  env = {
    PASSWORD = secret("db_password")
  }
  rollout {
    strategy = "rolling"
  }
}

server "api" {
  version    = "1.0.0"
  command    = ["./api", "--port", "$(PORT)"]
  replicas   = 2
  port       = 8000
  depends_on = [server.db]
  requires "db" {
    version = "< 4.0"
  }
  env = {
    TOKEN     = secret("api_token")
    LOG_LEVEL = "info"
  }
  check "health" {
    http {
      path = "/health"
    }
    interval = "5s"
  }
}
