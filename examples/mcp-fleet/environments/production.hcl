environment     = "production"
search_replicas = 4
search_version  = "1.4.2"
gateway_version = "2.1.0"
