tend {
  update {
    schedule = "@daily"
  }
}

server "api" {
  version = "1.4.2"
  command = ["/opt/builds/api-${version}"]
  update {
    policy = "minor"
  }
}

# An exact version under the tend block's update settings is not an error:
# tend updates the servers with a constraint, and leaves this one alone.
server "web" {
  version = "2.0.0"
  command = ["/opt/builds/web-${version}"]
  port    = 9000
}
