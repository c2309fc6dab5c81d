# Read by the deployer with `terraform output -json` (deployer::contract::TF_OUTPUTS).
# While database_enabled = false the db_* and powersync_db_* outputs are null.

output "instance_id" {
  description = "OpenStack id of the instance."
  value       = module.compute.instance_id
}

output "instance_name" {
  description = "Name of the instance."
  value       = module.compute.instance_name
}

output "public_ipv4" {
  description = "Public IPv4 of the instance."
  value       = module.compute.public_ipv4
}

output "private_ipv4" {
  description = "Private-network IPv4 of the instance."
  value       = module.compute.private_ipv4
}

output "ssh_user" {
  description = "SSH user of the instance's image."
  value       = module.compute.ssh_user
}

output "api_domain" {
  description = "API host name."
  value       = module.dns.api_domain
}

output "powersync_domain" {
  description = "PowerSync host name."
  value       = module.dns.powersync_domain
}

output "mqtt_domain" {
  description = "MQTT host name."
  value       = module.dns.mqtt_domain
}

output "db_host" {
  description = "Managed PostgreSQL host (private network)."
  value       = one(module.managed_db[*].host)
}

output "db_port" {
  description = "Managed PostgreSQL port (number)."
  value       = one(module.managed_db[*].port)
}

output "db_name" {
  description = "Application database."
  value       = one(module.managed_db[*].database_name)
}

output "db_user" {
  description = "Application user."
  value       = one(module.managed_db[*].app_user)
}

output "db_password" {
  description = "Application user's password."
  value       = one(module.managed_db[*].app_password)
  sensitive   = true
}

output "powersync_db_user" {
  description = "PowerSync replication user."
  value       = one(module.managed_db[*].powersync_user)
}

output "powersync_db_password" {
  description = "PowerSync user's password."
  value       = one(module.managed_db[*].powersync_password)
  sensitive   = true
}

output "db_ca_certificate" {
  description = "PEM CA certificate of the managed database."
  value       = one(module.managed_db[*].ca_certificate)
}

output "openstack_region" {
  description = "OpenStack region of the instance."
  value       = var.region
}
