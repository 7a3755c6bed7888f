provider "process" "local" {}

server "a" {
  provider = provider.process.local
  version  = "1.0.0"
  command  = ["./bin/server"]
  contract = "enforce"

  contract_capabilities = ["samplng", "roots", "roots"]
}
