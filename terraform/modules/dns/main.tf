# Cloudflare records of one environment: the API, PowerSync and MQTT host names, all pointing
# at the instance's public IPv4. Not proxied: MQTT is not HTTP, and Caddy obtains its own
# Let's Encrypt certificates (HTTP-01) for the three names.
terraform {
  required_providers {
    cloudflare = {
      source = "cloudflare/cloudflare"
    }
  }
}

resource "cloudflare_dns_record" "host" {
  for_each = {
    api       = var.api_domain
    powersync = var.powersync_domain
    mqtt      = var.mqtt_domain
  }

  zone_id = var.zone_id
  name    = each.value
  type    = "A"
  content = var.ipv4
  ttl     = var.ttl
  proxied = false
  comment = "AccoReboot ${var.env_name} ${each.key} (managed by Terraform)"
}
