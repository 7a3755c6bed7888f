tend {
  block_vulnerable = true
  advisories {
    source = "https://osv.example.com/tend/all.json"
  }
}

provider "docker" "local" {}

provider "process" "local" {}

server "search" {
  provider = provider.docker.local
  version  = "1.4.2"
  image    = "registry.example.com/mcp/search:${version}"
}

server "notes" {
  provider         = provider.process.local
  version          = "1.1.0"
  command          = ["./bin/mcp-notes-${version}"]
  block_vulnerable = false
  release {
    package = "pkg:golang/example.com/mcp-notes"
  }
}
