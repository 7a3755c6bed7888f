variable "count" {
  type      = number
  default   = 3
  sensitive = true
}

provider "process" "local" {}

server "a" {
  provider = provider.process.local
  version  = "1.0.0"
  command  = ["./bin/server"]
  replicas = var.count
}
