# --- Set by the deployer as TF_VAR_* (deployer::contract::TF_VARS) -------------------------

variable "project_id" {
  description = "OVH Public Cloud project id of this environment."
  type        = string

  validation {
    condition     = can(regex("^[0-9a-f]{32}$", var.project_id))
    error_message = "project_id must be the 32 hex characters of the OVH Public Cloud project id."
  }
}

variable "region" {
  description = "OpenStack region of the instance and the private network (e.g. GRA9)."
  type        = string

  validation {
    condition     = can(regex("^[A-Z]+[0-9]+$", var.region))
    error_message = "region must be an OpenStack region name such as GRA9 or SBG5."
  }
}

variable "ssh_public_key" {
  description = "Operator's SSH public key."
  type        = string
}

variable "operator_cidrs" {
  description = "CIDRs allowed to reach SSH, passed as a JSON list."
  type        = list(string)
}

variable "base_domain" {
  description = "DNS zone the environment's host names live in (e.g. accoreboot.example)."
  type        = string

  validation {
    condition     = can(regex("^([a-z0-9-]+\\.)+[a-z]{2,}$", var.base_domain))
    error_message = "base_domain must be a lower-case domain name such as accoreboot.example."
  }
}

variable "cloudflare_zone_id" {
  description = "Cloudflare zone id of base_domain."
  type        = string

  validation {
    condition     = can(regex("^[0-9a-f]{32}$", var.cloudflare_zone_id))
    error_message = "cloudflare_zone_id must be the 32 hex characters of the Cloudflare zone id."
  }
}

variable "acme_email" {
  description = "Let's Encrypt account e-mail (used by Caddy through the compose .env; checked here)."
  type        = string

  validation {
    condition     = can(regex("^[^@ ]+@[^@ ]+\\.[^@ ]+$", var.acme_email))
    error_message = "acme_email must be an e-mail address."
  }
}

# --- Per-environment settings (terraform.tfvars) ---------------------------------------------

variable "env_name" {
  description = "Name of this environment; must match the directory name."
  type        = string
}

variable "database_enabled" {
  description = "false removes the managed database (and its billing) but keeps the network and the instance; true (re)creates it."
  type        = bool
  default     = true

  validation {
    condition     = var.database_enabled || var.env_name != "prod"
    error_message = "prod's database cannot be disabled: database_enabled=false is for preprod (and test)."
  }
}

variable "instance_flavor" {
  description = "OpenStack flavor of the instance."
  type        = string
}

variable "image_name" {
  description = "OpenStack image of the instance."
  type        = string
  default     = "Debian 12"
}

variable "ssh_user" {
  description = "Default user of image_name (\"debian\" or \"ubuntu\")."
  type        = string
  default     = "debian"
}

variable "data_volume_size_gb" {
  description = "Persistent data volume size (ingest WAL, Caddy data), GB."
  type        = number
}

variable "db_plan" {
  description = "OVH managed PostgreSQL plan."
  type        = string
}

variable "db_flavor" {
  description = "OVH managed PostgreSQL flavor."
  type        = string
}

variable "db_region" {
  description = "Database region (GRA, SBG, DE...); null derives it from region (GRA9 -> GRA)."
  type        = string
  default     = null
}

variable "private_cidr" {
  description = "CIDR of the private subnet."
  type        = string
}

variable "vlan_id" {
  description = "VLAN id of the private network inside the vRack."
  type        = number
}

variable "vrack_id" {
  description = "vRack service name to attach the project to; null if the project already has one."
  type        = string
  default     = null
}

variable "allow_plain_mqtt" {
  description = "Open plain MQTT (1883) and plain MQTT over WebSocket (8083) to the Internet."
  type        = bool
  default     = false
}
