tend {
  update {
    schedule    = "@daily"
    commit      = true
    signing_key = "-----BEGIN PGP PRIVATE KEY BLOCK-----"
  }
}

server "api" {
  version = "~> 1.4"
  command = ["/opt/builds/api-${version}"]
}
