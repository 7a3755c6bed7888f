provider "kubernetes" "prod" {
  in_cluster = true
  context    = "prod"
}
