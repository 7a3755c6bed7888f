window "often" {
  schedule = "@every 6h"
  duration = "1h"
  action   = "allow"
}
