provider "kubernetes" "prod" {
  context    = "prod"
  checks_via = "proxy"
}
