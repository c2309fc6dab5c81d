# OVH managed PostgreSQL (Aiven platform) on the private network only: the cluster, the
# application database, the application user, the PowerSync replication user, and the CA
# certificate clients verify the server with (sslmode=verify-full).
terraform {
  required_providers {
    ovh = {
      source = "ovh/ovh"
    }
  }
}

resource "ovh_cloud_project_database" "this" {
  service_name = var.project_id
  description  = var.name
  engine       = "postgresql"
  version      = var.pg_version
  plan         = var.plan
  flavor       = var.flavor
  disk_size    = var.disk_size_gb

  nodes {
    region     = var.region
    network_id = var.network_id
    subnet_id  = var.subnet_id
  }

  # Only the private subnet reaches the database.
  ip_restrictions {
    description = "${var.name} private subnet"
    ip          = var.allowed_cidr
  }
}

resource "ovh_cloud_project_database_database" "app" {
  service_name = var.project_id
  engine       = "postgresql"
  cluster_id   = ovh_cloud_project_database.this.id
  name         = var.database_name
}

# PowerSync's bucket storage lives in its own database on the same server.
resource "ovh_cloud_project_database_database" "powersync_storage" {
  service_name = var.project_id
  engine       = "postgresql"
  cluster_id   = ovh_cloud_project_database.this.id
  name         = var.powersync_storage_database
}

resource "ovh_cloud_project_database_postgresql_user" "app" {
  service_name = var.project_id
  cluster_id   = ovh_cloud_project_database.this.id
  name         = var.app_user
}

# PowerSync reads the WAL through logical replication: the only grantable attribute on OVH.
resource "ovh_cloud_project_database_postgresql_user" "powersync" {
  service_name = var.project_id
  cluster_id   = ovh_cloud_project_database.this.id
  name         = var.powersync_user
  roles        = ["replication"]
}

data "ovh_cloud_project_database_certificates" "this" {
  service_name = var.project_id
  engine       = "postgresql"
  cluster_id   = ovh_cloud_project_database.this.id
}

locals {
  endpoint = one([
    for e in ovh_cloud_project_database.this.endpoints : e if e.component == "postgresql"
  ])
}
