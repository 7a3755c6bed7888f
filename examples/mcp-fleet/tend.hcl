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
}
