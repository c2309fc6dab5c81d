output "api_domain" {
  description = "API host name."
  value       = cloudflare_dns_record.host["api"].name
}

output "powersync_domain" {
  description = "PowerSync host name."
  value       = cloudflare_dns_record.host["powersync"].name
}

output "mqtt_domain" {
  description = "MQTT host name."
  value       = cloudflare_dns_record.host["mqtt"].name
}
