variable "replicas" {
  type    = number
  default = 1
}

variable "log_level" {
  type    = string
  default = "info"
}

variable "region" {
  type    = string
  default = "eu-1"
}

variable "tags" {
  type    = list(string)
  default = []
}

server "api" {
  version  = "2.0.0"
  command  = ["./api"]
  replicas = var.replicas
  port     = 9000
  env = {
    LOG_LEVEL = var.log_level
    REGION    = var.region
    TAGS      = join(",", var.tags)
  }
}
