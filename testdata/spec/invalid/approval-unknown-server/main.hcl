approval "data-tier" {
  changes = ["all"]
  servers = [server.postgres, server.a]
}

approval "Bad Name" {
}

server "a" {
  version = "1.0.0"
  command = ["./bin/server"]
  approval {
    servers = [server.a]
  }
}
