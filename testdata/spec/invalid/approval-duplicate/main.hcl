server "a" {
  version = "1.0.0"
  command = ["./bin/server"]
  approval {
    changes = []
  }
  approval {
    changes = ["major"]
  }
}

approval "gate" {
  changes = ["delete"]
}

approval "gate" {
  changes = ["all"]
}
