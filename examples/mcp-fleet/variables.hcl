variable "environment" {
  type        = string
  description = "Which environment this reconciler serves."
  validation {
    condition     = contains(["production", "staging"], var.environment)
    error_message = "environment must be \"production\" or \"staging\"."
  }
}

variable "registry" {
  type        = string
  default     = "registry.example.com/mcp"
  description = "Where the images come from."
}

variable "postgres_image" {
  type        = string
  default     = "postgres:16.4"
  description = "The database image (a mirror's copy, where Docker Hub is out of reach)."
}

variable "search_version" {
  type    = string
  default = "1.4.2"
}

variable "gateway_version" {
  type    = string
  default = "2.1.0"
}

variable "notes_version" {
  type    = string
  default = "1.2.0"
}

variable "search_replicas" {
  type    = number
  default = 2
}

variable "notes_release_sha256" {
  type        = string
  description = "Digest of the notes release archive for notes_version."
  default     = "3f2a94c1d0b2e6b7a81f5c3e9d4b6a7c8e9f0a1b2c3d4e5f60718293a4b5c6d7"
}

variable "staging_tend_url" {
  type        = string
  default     = "https://tend-staging.example.com:8440"
  description = "The tend run of staging (its --listen), whose history production's promotion rule reads."
}

variable "promotion_environments" {
  type        = list(string)
  default     = ["production"]
  description = "The environments that take a version only after staging verified it; [] turns the rule off."
}

variable "alert_webhook" {
  type        = string
  sensitive   = true
  default     = "https://hooks.example.com/services/placeholder"
  description = "Where failures and rollbacks are posted; carries a token."
}

locals {
  common_labels = {
    team        = "mcp-platform"
    environment = var.environment
  }
  is_production = var.environment == "production"
  rate_limit    = local.is_production ? 100 : 1000
}
