provider "kubernetes" "prod" {
  context = "prod"
}

server "notes" {
  provider = provider.kubernetes.prod
  version  = "1.0.0"
  image    = "registry.example.com/mcp/notes:${version}"
  port     = 8080
  scaling {
    min         = 2
    max         = 6
    cpu_percent = 70
  }
  rollout {
    strategy     = "canary"
    canary_steps = [1, "50%"]
  }
}
