variable "project_id" {
  description = "OVH Public Cloud project id."
  type        = string
}

variable "name" {
  description = "Description of the cluster, \"<env>-postgresql\" by the project's convention."
  type        = string
}

variable "region" {
  description = "Database region (OVH database naming: GRA, SBG, DE...), not the OpenStack region."
  type        = string
}

variable "pg_version" {
  description = "PostgreSQL major version; 17 is the last one with TimescaleDB on OVH."
  type        = string
  default     = "17"

  validation {
    condition     = tonumber(var.pg_version) <= 17
    error_message = "TimescaleDB is not available on PostgreSQL 18 at OVH: keep pg_version <= 17."
  }
}

variable "plan" {
  description = "OVH database plan: essential, business or enterprise."
  type        = string
  default     = "essential"

  validation {
    condition     = contains(["essential", "business", "enterprise"], var.plan)
    error_message = "plan must be essential, business or enterprise."
  }
}

variable "flavor" {
  description = "OVH database flavor."
  type        = string
  default     = "db1-4"
}

variable "disk_size_gb" {
  description = "Disk size in GB; null keeps the flavor's default."
  type        = number
  default     = null
}

variable "network_id" {
  description = "Regional OpenStack id of the private network."
  type        = string
}

variable "subnet_id" {
  description = "OpenStack id of the private subnet."
  type        = string
}

variable "allowed_cidr" {
  description = "The only CIDR allowed to connect (the private subnet)."
  type        = string
}

variable "database_name" {
  description = "Application database."
  type        = string
  default     = "accoreboot"
}

variable "app_user" {
  description = "Application user (ingest, backend)."
  type        = string
  default     = "accoreboot_app"
}

variable "powersync_user" {
  description = "PowerSync replication user."
  type        = string
  default     = "powersync"
}

variable "powersync_storage_database" {
  description = "Database holding PowerSync's bucket storage (PS_STORAGE_URI)."
  type        = string
  default     = "powersync_storage"
}
