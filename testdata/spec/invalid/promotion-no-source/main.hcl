server "a" {
  version = "1.0.0"
  command = ["./bin/server"]
  promotion {
    from = "staging"
    soak = "1h"
  }
  promotion {
    from = "qa"
  }
}
