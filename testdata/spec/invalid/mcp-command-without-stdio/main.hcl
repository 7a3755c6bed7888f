server "notes" {
  version = "1.0.0"
  command = ["./bin/mcp-notes"]
  port    = 8410
  check "mcp" {
    mcp {
      command = ["./bin/mcp-notes", "--stdio"]
    }
  }
}
