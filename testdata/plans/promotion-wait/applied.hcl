provider "process" "local" {}

server "soaking" {
  version = "1.4.2"
  command = ["./s"]
  port    = 8000
}

server "failed" {
  version = "1.4.2"
  command = ["./f"]
  port    = 8100
}

server "proven" {
  version = "1.4.2"
  command = ["./p"]
  port    = 8200
}

server "settings" {
  version = "1.4.2"
  command = ["./x"]
  port    = 8300
}
