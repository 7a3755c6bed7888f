provider "docker" "local" {}
provider "process" "local" {}

server "signal" {
  provider = provider.process.local
  version  = "1.0.0"
  command  = ["./notes", "--config", "notes.yaml"]
  config_file "notes.yaml" {
    content = "workers: 4\n"
  }
  reload {
    signal = "SIGhup"
  }
}

server "command" {
  provider = provider.docker.local
  version  = "1.0.0"
  image    = "nginx:${version}"
  config_file "/etc/nginx/conf.d/site.conf" {
    content = "server { listen 80; }\n"
  }
  reload {
    command = ["nginx", "-s", "reload"]
    timeout = "5s"
  }
}

server "http" {
  provider = provider.process.local
  version  = "1.0.0"
  command  = ["./notes"]
  ports    = { web = 8000, admin = 9000 }
  reload {
    http = "POST /admin/reload"
    port = "admin"
  }
}
