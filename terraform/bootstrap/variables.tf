variable "project_id" {
  description = "OVH Public Cloud project id (service name) of this environment (TF_VAR_project_id)."
  type        = string

  validation {
    condition     = can(regex("^[0-9a-f]{32}$", var.project_id))
    error_message = "project_id must be the 32 hex characters of the OVH Public Cloud project id."
  }
}

variable "env_name" {
  description = "Environment name: test, preprod or prod (TF_VAR_env_name)."
  type        = string

  validation {
    condition     = contains(["test", "preprod", "prod"], var.env_name)
    error_message = "env_name must be one of test, preprod, prod."
  }
}

variable "bucket_name" {
  description = "State bucket name; one bucket per OVH project (per environment)."
  type        = string
  default     = "accoreboot-tfstate"
}

variable "storage_region" {
  description = "OVH Object Storage region of the state bucket (OVH name of S3 region eu-west-par)."
  type        = string
  default     = "EU-WEST-PAR"
}
