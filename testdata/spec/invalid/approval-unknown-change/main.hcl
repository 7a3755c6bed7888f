tend {
  approval {
    changes = ["major", "contract"]
  }
}

server "a" {
  version = "1.0.0"
  command = ["./bin/server"]
  approval {
    changes = ["delet"]
  }
}
