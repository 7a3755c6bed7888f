# A production-like MCP fleet: a search MCP server and its index on Docker,
# a notes server on systemd hosts, a gateway on Kubernetes, a Postgres
# database they share. production and staging share this repository; the
# values that differ live in environments/production.hcl and
# environments/staging.hcl.
#
#   tend validate --env staging examples/mcp-fleet
#   tend plan     --env production examples/mcp-fleet

tend {
  required_version  = ">= 0.1.0, < 1.0.0"
  poll_interval     = "1m"
  parallelism       = 8
  schedule          = "*/15 * * * *"
  self_heal         = true
  max_prune_percent = 25

  # Production takes a version only after staging verified it, an hour ago
  # or more; a version that failed in staging never reaches production, and
  # while staging's tend cannot be reached, production waits.
  promotion {
    from         = "staging"
    soak         = "1h"
    url          = var.staging_tend_url
    token        = secret("staging_api_token")
    environments = var.promotion_environments
  }

  # In production, major versions and deletes wait for `tend approve`.
  approval {
    changes      = ["major", "delete"]
    environments = ["production"]
  }
}

# A new version of the database, or its removal, waits for an approval in
# every environment.
approval "data-tier" {
  changes = ["version", "delete"]
  servers = [server.postgres]
}
