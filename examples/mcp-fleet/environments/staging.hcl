environment     = "staging"
search_replicas = 2
search_version  = "1.5.0"
gateway_version = "2.2.0"
