provider "process" "local" {}

provider "process" "local" {
  stop_timeout = "5s"
}
