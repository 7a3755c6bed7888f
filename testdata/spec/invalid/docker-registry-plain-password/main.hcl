provider "docker" "edge" {
  registry "registry.example.com:5000" {
    username = "deploy"
    password = "hunter2"
  }
}
