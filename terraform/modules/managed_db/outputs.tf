output "host" {
  description = "Host name clients connect to (private network)."
  value       = local.endpoint.domain
}

output "port" {
  description = "PostgreSQL port."
  value       = local.endpoint.port
}

output "database_name" {
  description = "Application database."
  value       = ovh_cloud_project_database_database.app.name
}

output "app_user" {
  description = "Application user."
  value       = ovh_cloud_project_database_postgresql_user.app.name
}

output "app_password" {
  description = "Application user's password."
  value       = ovh_cloud_project_database_postgresql_user.app.password
  sensitive   = true
}

output "powersync_user" {
  description = "PowerSync replication user."
  value       = ovh_cloud_project_database_postgresql_user.powersync.name
}

output "powersync_password" {
  description = "PowerSync user's password."
  value       = ovh_cloud_project_database_postgresql_user.powersync.password
  sensitive   = true
}

output "ca_certificate" {
  description = "PEM CA certificate of the cluster (db-ca.pem on the instance)."
  value       = data.ovh_cloud_project_database_certificates.this.ca
}
