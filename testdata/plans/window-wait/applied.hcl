provider "process" "local" {}

server "db" {
  version = "3.1.0"
  command = ["./db"]
  port    = 5432
}

server "api" {
  version    = "1.0.0"
  command    = ["./api"]
  port       = 8000
  depends_on = [server.db]
}

server "web" {
  version = "2.0.0"
  command = ["./web"]
  port    = 8080
}

server "cache" {
  version = "1.0.0"
  command = ["./cache"]
  port    = 6379
}

server "worker" {
  version  = "1.0.0"
  command  = ["./worker"]
  port     = 9000
  replicas = 2
}
