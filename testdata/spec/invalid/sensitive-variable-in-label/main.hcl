provider "process" "local" {}

variable "team" {
  default   = "search"
  sensitive = true
}

server "a" {
  provider = provider.process.local
  version  = "1.0.0"
  command  = ["./bin/server"]
  labels = { team = var.team }
}
