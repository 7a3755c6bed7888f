# A host's servers may ask for one and a half times its CPU and memory at
# their max replicas; beyond that, tend plan refuses.
tend {
  overcommit_percent = 150
}

server "search" {
  version  = "1.0.0"
  command  = ["./bin/search"]
  port     = 8410
  replicas = 2
  resources {
    cpu    = "500m"
    memory = "256Mi"
  }
  scaling {
    min         = 2
    max         = 6
    cpu_percent = 70
  }
}
