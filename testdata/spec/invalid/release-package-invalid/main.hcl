tend {
  block_vulnerable = true
}

provider "process" "local" {}

server "api" {
  version = "1.0.0"
  command = ["./api"]
  release {
    package = "github.com/acme/api"
  }
}

server "web" {
  version = "2.0.0"
  command = ["./web"]
  release {
    package = "pkg:golang/github.com/acme/web@2.0.0"
  }
}

server "db" {
  version = "3.0.0"
  command = ["./db"]
  release {
  }
}

server "queue" {
  version          = "4.0.0"
  command          = ["./queue"]
  block_vulnerable = true
}
