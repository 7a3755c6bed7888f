server "postgres" {
  provider = provider.docker.edge
  version  = "16.4.0"
  image    = var.postgres_image
  port     = 5432
  labels   = local.common_labels

  env = {
    POSTGRES_USER     = "mcp"
    POSTGRES_PASSWORD = secret("postgres_password")
    POSTGRES_DB       = "mcp"
  }

  volume "data" {
    path = "/var/lib/postgresql/data"
    size = "20Gi"
  }

  resources {
    cpu    = 2
    memory = "4Gi"
  }

  check "accepts-connections" {
    tcp {}
    interval = "5s"
    timeout  = "1s"
  }

  rollout {
    strategy      = "recreate"
    verify_for    = "20s"
    backup_before = "always"
  }

  backup {
    schedule    = "0 3 * * *"
    keep        = { count = 30, age = "30d" }
    command     = ["pg_dump", "--format=custom", "--username=mcp", "mcp"]
    destination = "/var/backups/tend/postgres"
  }
}
