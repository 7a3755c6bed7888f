provider "process" "local" {}

server "a" {
  version  = "1.0.0"
  command  = ["./a"]
  port     = 8000
  selector = { hostname = "edge-1" }
}

server "b" {
  version  = "1.0.0"
  command  = ["./b"]
  port     = 8000
  selector = { hostname = "edge-2" }
}

server "c" {
  version  = "1.0.0"
  command  = ["./c"]
  port     = 8000
  selector = { hostname = "core-*" }
}
