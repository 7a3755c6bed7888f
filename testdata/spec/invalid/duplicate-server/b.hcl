server "api" {
  provider = provider.process.local
  version  = "1.1.0"
  command  = ["./bin/server"]
}
