variable "environment" {
  type = string
}

tend {
  approval {
    changes      = ["major", "delete"]
    environments = ["production"]
  }
  promotion {
    from         = "staging"
    soak         = "1h"
    url          = "https://tend-staging.example.com:8440"
    token        = secret("staging_api_token")
    environments = ["production"]
  }
}

approval "data-tier" {
  changes = ["all"]
  servers = [server.db]
}

server "db" {
  version = "16.4.0"
  command = ["./bin/db"]
  approval {
    changes = ["version", "create"]
  }
  promotion {
    from  = "staging"
    soak  = "24h"
    store = "/var/lib/tend-staging"
  }
}

server "search" {
  version = "1.5.0"
  command = ["./bin/search"]
}
