# overcommit_percent is at least 100 (a host's servers may always ask for
# all it has) and at most 1000.
tend {
  overcommit_percent = 50
}

server "a" {
  version = "1.0.0"
  command = ["./bin/server"]
}
