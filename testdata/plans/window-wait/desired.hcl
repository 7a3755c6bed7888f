provider "process" "local" {}

server "db" {
  version = "3.2.0"
  command = ["./db"]
  port    = 5432
}

server "api" {
  version    = "1.1.0"
  command    = ["./api"]
  port       = 8000
  depends_on = [server.db]
}

server "web" {
  version = "2.1.0"
  command = ["./web"]
  port    = 8080
}

server "cache" {
  version = "1.1.0"
  command = ["./cache"]
  port    = 6379
}

server "worker" {
  version  = "1.0.0"
  command  = ["./worker"]
  port     = 9000
  replicas = 2
}

# Sundays 10:00 to 14:00 UTC: the plan is made at 12:00 on a Sunday.
window "sunday-maintenance" {
  schedule = "0 10 * * 0"
  duration = "4h"
  action   = "deny"
  servers  = [server.db, server.worker]
}

# web changes only at night, Berlin time.
window "nights" {
  schedule = "0 22 * * *"
  duration = "6h"
  action   = "allow"
  servers  = [server.web]
  timezone = "Europe/Berlin"
}
