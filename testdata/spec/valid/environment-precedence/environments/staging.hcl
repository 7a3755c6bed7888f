replicas  = 3
log_level = "debug"
region    = "eu-2"
