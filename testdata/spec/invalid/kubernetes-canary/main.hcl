provider "kubernetes" "prod" {
  context = "prod"
}

server "notes" {
  provider = provider.kubernetes.prod
  version  = "1.0.0"
  image    = "registry.example.com/mcp/notes:${version}"
  replicas = 4
  port     = 8080
  rollout {
    strategy     = "canary"
    canary_steps = [1, "50%"]
  }
}
