variable "api_key" {
  type      = string
  sensitive = true
  default   = "not-a-real-key"
}

server "api" {
  version = "1.2.3"
  command = ["./api", "--token", secret("api_token")]
  port    = 9000
  env = {
    API_KEY      = var.api_key
    DATABASE_URL = "postgres://app:${secret("db_password")}@db:5432/app"
    PLAIN        = "visible"
  }
  config_file "secrets.json" {
    content = jsonencode({ key = var.api_key })
    mode    = "0644"
  }
  config_file "public.json" {
    content = jsonencode({ public = true })
  }
}
