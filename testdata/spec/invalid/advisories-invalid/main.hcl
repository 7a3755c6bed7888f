tend {
  block_vulnerable = true
  advisories {
    source = "ftp://advisories.example.com/osv.json"
  }
  advisories {
    source = "./osv"
  }
}

provider "docker" "local" {}

server "api" {
  version          = "1.0.0"
  image            = "registry.example.com/api:${version}"
  block_vulnerable = "yes"
}
