# This file is maintained by "tend lock": it records, for each server whose
# version is a constraint, the release the constraint resolved to. Commit it.
# tend lock -upgrade moves to the newest releases the constraints allow.

server "gateway" {
  constraint = ">= 2.0, < 3.0"
  version    = "2.3.1"
  digest     = "sha1:cccccccccccccccccccccccccccccccccccccccc"
  source     = "git:https://git.example.com/mcp/gateway.git"
}

server "notes" {
  constraint = "~> 0.9.0"
  version    = "0.9.4"
  digest     = "sha256:0000000000000000000000000000000000000000000000000000000000000000"
  source     = "path:/opt/builds/mcp-notes-{version}"
}

server "search" {
  constraint = "~> 1.4"
  version    = "1.6.0"
  digest     = "sha256:abababababababababababababababababababababababababababababababab"
  source     = "registry:registry.example.com/mcp/search"
}
