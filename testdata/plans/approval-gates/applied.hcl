provider "process" "local" {}

server "search" {
  version = "1.4.2"
  command = ["./search"]
  port    = 8000
}

server "notes" {
  version = "1.2.0"
  command = ["./notes"]
  port    = 8100
}

server "db" {
  version = "3.2.0"
  command = ["./db"]
  port    = 5432
}

server "gateway" {
  version = "2.1.0"
  command = ["./gateway"]
  port    = 8200
}

server "old" {
  version = "1.0.0"
  command = ["./old"]
  port    = 8300
}

server "api" {
  version = "1.0.0"
  command = ["./api"]
  port    = 8400
}
