# A null provider records replicas and runs nothing: image, command and
# artifact are all optional, and verify_for defaults to 0s.
provider "null" "ci" {}

server "search" {
  version  = "1.4.2"
  image    = "registry.example.com/mcp/search:${version}"
  replicas = 2
  port     = 8000
  env      = { MCP_ENV = "ci" }
}

server "notes" {
  version = "1.0.0"
  command = ["./bin/mcp-notes"]
  port    = 8410
  rollout {
    verify_for = "2s"
  }
}

server "bare" {
  version = "0.1.0"
}
