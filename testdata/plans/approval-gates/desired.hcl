provider "process" "local" {}

# Major version changes and deletes wait for a person's approval.
tend {
  approval {
    changes = ["major", "delete"]
  }
}

# Every change of the database does.
approval "data-tier" {
  changes = ["all"]
  servers = [server.db]
}

# 1.4.2 → 2.0.0: major, no approval yet: it waits.
server "search" {
  version = "2.0.0"
  command = ["./search"]
  port    = 8000
}

# 1.2.0 → 1.3.0: minor, no rule asks: it goes.
server "notes" {
  version = "1.3.0"
  command = ["./notes"]
  port    = 8100
}

# Approved (state.json): it goes, and says by whom.
server "db" {
  version = "3.3.0"
  command = ["./db"]
  port    = 5432
}

# Rejected (state.json): it is held with the reason.
server "gateway" {
  version = "3.0.0"
  command = ["./gateway"]
  port    = 8200
}

# Only its settings change; api waits for nothing.
server "api" {
  version  = "1.0.0"
  command  = ["./api", "--verbose"]
  port     = 8400
}

# "old" left the desired state: its delete waits for an approval.
