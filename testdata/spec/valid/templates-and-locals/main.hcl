locals {
  workers = local.base_workers * 2
  base_workers = 4
  name    = upper("notes")
}

server "notes" {
  version = "1.0.0"
  command = ["./mcp-notes", "--name", local.name]
  port    = 8410
  config_file "config.yaml" {
    content = templatefile("templates/config.yaml.tpl", { workers = local.workers, version = version })
  }
  config_file "banner.txt" {
    content = file("templates/banner.txt")
  }
  labels = {
    major = tostring(semver_major(version))
    next  = semver_bump(version, "minor")
    ok    = tostring(semver_satisfies(version, "~> 1.0"))
  }
}
