# No changes to the data tier during business hours on weekdays.
window "business-hours" {
  schedule = "0 8 * * 1-5"
  duration = "10h"
  action   = "deny"
  servers  = [server.postgres, server.search-index]
  timezone = "Europe/Berlin"
}

# The year-end freeze covers the whole fleet.
window "year-end-freeze" {
  schedule = "0 0 20 12 *"
  duration = "14d"
  action   = "deny"
}

notify "ops" {
  url     = var.alert_webhook
  format  = "slack"
  events  = ["failure", "rollback", "held", "drift"]
  headers = { Authorization = "Bearer ${secret("ops_notify_token")}" }
}
