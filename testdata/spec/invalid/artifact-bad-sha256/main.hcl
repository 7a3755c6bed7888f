provider "process" "local" {}

server "a" {
  provider = provider.process.local
  version  = "1.0.0"
  command  = ["./bin/server"]
  artifact {
    url    = "https://releases.example.com/a-${version}.tar.gz"
    sha256 = "abc123"
  }
}
