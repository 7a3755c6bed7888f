provider "process" "local" {}

server "a" {
  provider = provider.process.local
  version  = "1.0.0"
  command  = ["./bin/server"]
}

notify "ops" {
  url    = "https://hooks.example.com/tend"
  events = ["apply", "rolback"]
}
