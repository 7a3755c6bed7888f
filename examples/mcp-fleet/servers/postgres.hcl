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

  # A nightly pg_dump, restored with pg_restore; every Sunday a drill
  # restores the newest dump into a throw-away postgres-drill and checks it.
  backup {
    schedule        = "0 3 * * *"
    drill           = "0 5 * * 0"
    keep            = { count = 30, age = "30d" }
    command         = ["pg_dump", "--format=custom", "--username=mcp", "mcp"]
    restore_command = ["pg_restore", "--clean", "--if-exists", "--username=mcp", "--dbname=mcp"]
    destination     = "/var/backups/tend/postgres"
  }
}
