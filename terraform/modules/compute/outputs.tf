output "instance_id" {
  description = "OpenStack id of the instance."
  value       = openstack_compute_instance_v2.this.id
}

output "instance_name" {
  description = "Name of the instance."
  value       = openstack_compute_instance_v2.this.name
}

output "public_ipv4" {
  description = "Public IPv4 address (Ext-Net)."
  value       = openstack_compute_instance_v2.this.network[0].fixed_ip_v4
}

output "private_ipv4" {
  description = "Address on the private subnet."
  value       = openstack_compute_instance_v2.this.network[1].fixed_ip_v4
}

output "ssh_user" {
  description = "SSH user of the image."
  value       = var.ssh_user
}

output "data_volume_id" {
  description = "OpenStack id of the persistent data volume."
  value       = openstack_blockstorage_volume_v3.data.id
}
