provider "docker" "edge" {
  host        = "unix:///var/run/docker.sock"
  network     = "mcp"
  pull_policy = "missing"
}

provider "systemd" "hosts" {
  unit_dir       = "/etc/systemd/system"
  artifact_dir   = "/opt/tend"
  keep_artifacts = 3
  user           = "mcp"
}

provider "kubernetes" "cluster" {
  context   = "mcp-${var.environment}"
  namespace = "mcp-${var.environment}"
}

provider "process" "local" {
  stop_timeout = "10s"
}
