# No provider declared: the server runs on the implicit process provider.
server "notes" {
  version = "1.0.0"
  command = ["./bin/mcp-notes"]
  port    = 8410
}
