# One environment: network (kept when the database goes), instance, managed database
# (removable with -var database_enabled=false), DNS records.
locals {
  dns_suffix       = var.env_name == "prod" ? var.base_domain : "${var.env_name}.${var.base_domain}"
  api_domain       = "api.${local.dns_suffix}"
  powersync_domain = "sync.${local.dns_suffix}"
  mqtt_domain      = "mqtt.${local.dns_suffix}"

  db_region = coalesce(var.db_region, upper(regex("^[A-Za-z]+", var.region)))
  # Outside the DHCP pool (.100-.250) of modules/network.
  private_ipv4 = cidrhost(var.private_cidr, 10)
}

module "network" {
  source = "../../modules/network"

  project_id = var.project_id
  name       = var.env_name
  region     = var.region
  vrack_id   = var.vrack_id
  vlan_id    = var.vlan_id
  cidr       = var.private_cidr
}

module "compute" {
  source = "../../modules/compute"

  name                = "${var.env_name}-backend"
  flavor              = var.instance_flavor
  image_name          = var.image_name
  ssh_user            = var.ssh_user
  ssh_public_key      = var.ssh_public_key
  operator_cidrs      = var.operator_cidrs
  private_network_id  = module.network.network_id
  private_cidr        = module.network.cidr
  private_ipv4        = local.private_ipv4
  data_volume_size_gb = var.data_volume_size_gb
  allow_plain_mqtt    = var.allow_plain_mqtt
}

module "managed_db" {
  source = "../../modules/managed_db"
  count  = var.database_enabled ? 1 : 0

  project_id   = var.project_id
  name         = "${var.env_name}-postgresql"
  region       = local.db_region
  plan         = var.db_plan
  flavor       = var.db_flavor
  network_id   = module.network.network_id
  subnet_id    = module.network.subnet_id
  allowed_cidr = module.network.cidr
}

module "dns" {
  source = "../../modules/dns"

  zone_id          = var.cloudflare_zone_id
  env_name         = var.env_name
  ipv4             = module.compute.public_ipv4
  api_domain       = local.api_domain
  powersync_domain = local.powersync_domain
  mqtt_domain      = local.mqtt_domain
}
