# Private network of one environment: vRack attachment, the private network in the instance's
# region and its subnet. The database and the instance attach to it; nothing here depends on
# them, so removing the database (database_enabled = false) never touches the network.
terraform {
  required_providers {
    ovh = {
      source = "ovh/ovh"
    }
  }
}

# Attach the project to the account's vRack. Projects created with a vRack already are
# attached: leave vrack_id null for them.
resource "ovh_vrack_cloudproject" "this" {
  count = var.vrack_id == null ? 0 : 1

  service_name = var.vrack_id
  project_id   = var.project_id
}

resource "ovh_cloud_project_network_private" "this" {
  service_name = var.project_id
  name         = "${var.name}-private"
  regions      = [var.region]
  vlan_id      = var.vlan_id

  depends_on = [ovh_vrack_cloudproject.this]
}

resource "ovh_cloud_project_network_private_subnet_v2" "this" {
  service_name = var.project_id
  network_id   = ovh_cloud_project_network_private.this.regions_openstack_ids[var.region]
  region       = var.region
  name         = "${var.name}-private-subnet"
  cidr         = var.cidr
  dhcp         = true
  # No gateway: the instance's default route stays on its public interface (Ext-Net).
  enable_gateway_ip = false

  # DHCP (database nodes) hands out .100-.250; .2-.99 stay free for fixed addresses such as
  # the instance's (the environments put the instance on .10).
  allocation_pools {
    start = cidrhost(var.cidr, 100)
    end   = cidrhost(var.cidr, 250)
  }
}
