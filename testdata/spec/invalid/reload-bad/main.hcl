server "none" {
  version = "1.0.0"
  command = ["./a"]
  reload {}
}

server "two" {
  version = "1.0.0"
  command = ["./a"]
  port    = 8002
  reload {
    signal = "HUP"
    http   = "POST /reload"
  }
}

server "term" {
  version = "1.0.0"
  command = ["./a"]
  reload {
    signal = "TERM"
  }
}

server "request" {
  version = "1.0.0"
  command = ["./a"]
  port    = 8003
  reload {
    http = "/admin/reload"
  }
}

server "noport" {
  version = "1.0.0"
  command = ["./a"]
  reload {
    http = "POST /admin/reload"
  }
}

server "badport" {
  version = "1.0.0"
  command = ["./a"]
  port    = 8004
  reload {
    http = "POST /admin/reload"
    port = "admin"
  }
}

server "portsig" {
  version = "1.0.0"
  command = ["./a"]
  port    = 8005
  reload {
    signal = "USR1"
    port   = "http"
  }
}

server "twice" {
  version = "1.0.0"
  command = ["./a"]
  reload {
    signal = "HUP"
  }
  reload {
    command = []
  }
}
