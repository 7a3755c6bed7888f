provider "process" "local" {}

servr "a" {
  version = "1.0.0"
}
