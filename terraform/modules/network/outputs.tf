output "network_id" {
  description = "Regional OpenStack id of the private network (what instances and databases use)."
  value       = ovh_cloud_project_network_private_subnet_v2.this.network_id
}

output "network_name" {
  description = "Name of the private network."
  value       = ovh_cloud_project_network_private.this.name
}

output "subnet_id" {
  description = "OpenStack id of the private subnet."
  value       = ovh_cloud_project_network_private_subnet_v2.this.id
}

output "cidr" {
  description = "CIDR of the private subnet."
  value       = ovh_cloud_project_network_private_subnet_v2.this.cidr
}
