server "api" {
  constraint = "~> 1.4"
  version    = "1.4.2"
  digest     = "sha256:0c88b20598df0fef4ab15c9a8d06e4ef895525eb547e38cae82c436f8fbf2bea"
  source     = "path:/opt/builds/api-{version}"
}
