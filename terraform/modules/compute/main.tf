# The one instance of an environment: key pair, security group, the persistent data volume,
# and the instance itself on Ext-Net (public) + the private network, configured by cloud-init.
terraform {
  required_providers {
    openstack = {
      source = "terraform-provider-openstack/openstack"
    }
  }
}

locals {
  # Rules open to the whole Internet: HTTPS (Caddy, ACME HTTP-01), MQTT over TLS, and MQTT over
  # secure WebSocket; plain MQTT (TCP and WebSocket) only where the environment allows it.
  public_ports = concat(
    [80, 443, var.mqtts_port, var.mqtt_wss_port],
    var.allow_plain_mqtt ? [var.mqtt_port, var.mqtt_ws_port] : [],
  )
  public_rules = merge([
    for port in local.public_ports : {
      "${port}-v4" = { port = port, cidr = "0.0.0.0/0", ethertype = "IPv4" }
      "${port}-v6" = { port = port, cidr = "::/0", ethertype = "IPv6" }
    }
  ]...)
  ssh_rules = {
    for cidr in var.operator_cidrs : "22-${cidr}" => {
      port      = 22
      cidr      = cidr
      ethertype = strcontains(cidr, ":") ? "IPv6" : "IPv4"
    }
  }

  user_data = templatefile("${path.module}/files/cloud-init.yaml.tftpl", {
    private_ip         = var.private_ipv4
    private_cidr       = var.private_cidr
    volume_id          = openstack_blockstorage_volume_v3.data.id
    data_mount         = var.data_mount
    data_uid           = var.data_uid
    ssh_user           = var.ssh_user
    remote_dir         = var.remote_dir
    marker             = var.boot_marker
    policy_routing_b64 = filebase64("${path.module}/files/policy-routing.sh")
    mount_data_b64     = filebase64("${path.module}/files/mount-data.sh")
  })
}

resource "openstack_compute_keypair_v2" "operator" {
  name       = "${var.name}-operator"
  public_key = var.ssh_public_key
}

resource "openstack_networking_secgroup_v2" "instance" {
  name        = "${var.name}-instance"
  description = "AccoReboot ${var.name}: SSH from operators, HTTPS and MQTT from anywhere"
}

resource "openstack_networking_secgroup_rule_v2" "ingress" {
  for_each = merge(local.public_rules, local.ssh_rules)

  security_group_id = openstack_networking_secgroup_v2.instance.id
  direction         = "ingress"
  ethertype         = each.value.ethertype
  protocol          = "tcp"
  port_range_min    = each.value.port
  port_range_max    = each.value.port
  remote_ip_prefix  = each.value.cidr
}

# Ingest WAL and Caddy's data (certificates, ACME account): outlives instance rebuilds.
resource "openstack_blockstorage_volume_v3" "data" {
  name        = "${var.name}-data"
  description = "AccoReboot ${var.name}: ingest WAL and Caddy data"
  size        = var.data_volume_size_gb
  volume_type = var.data_volume_type
}

resource "openstack_compute_instance_v2" "this" {
  name            = var.name
  flavor_name     = var.flavor
  image_name      = var.image_name
  key_pair        = openstack_compute_keypair_v2.operator.name
  security_groups = [openstack_networking_secgroup_v2.instance.name]
  user_data       = local.user_data

  network {
    name = "Ext-Net"
  }

  network {
    uuid        = var.private_network_id
    fixed_ip_v4 = var.private_ipv4
  }
}

resource "openstack_compute_volume_attach_v2" "data" {
  instance_id = openstack_compute_instance_v2.this.id
  volume_id   = openstack_blockstorage_volume_v3.data.id
}
