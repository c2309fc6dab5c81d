variable "zone_id" {
  description = "Cloudflare zone id of the base domain."
  type        = string
}

variable "env_name" {
  description = "Environment name (for record comments)."
  type        = string
}

variable "ipv4" {
  description = "Public IPv4 address the records point at."
  type        = string
}

variable "api_domain" {
  description = "Fully qualified API host name."
  type        = string
}

variable "powersync_domain" {
  description = "Fully qualified PowerSync host name."
  type        = string
}

variable "mqtt_domain" {
  description = "Fully qualified MQTT host name."
  type        = string
}

variable "ttl" {
  description = "Record TTL in seconds (1 = automatic)."
  type        = number
  default     = 300
}
