provider "dokcer" "local" {}
