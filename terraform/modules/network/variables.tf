variable "project_id" {
  description = "OVH Public Cloud project id."
  type        = string
}

variable "name" {
  description = "Name prefix of the resources (e.g. \"test\")."
  type        = string
}

variable "region" {
  description = "OpenStack region of the instance and the network (e.g. GRA9)."
  type        = string
}

variable "vrack_id" {
  description = "vRack service name to attach the project to; null when already attached."
  type        = string
  default     = null
}

variable "vlan_id" {
  description = "VLAN id of the private network inside the vRack."
  type        = number
  default     = 42
}

variable "cidr" {
  description = "CIDR of the private subnet."
  type        = string

  validation {
    condition     = can(cidrhost(var.cidr, 250)) && !strcontains(var.cidr, ":")
    error_message = "cidr must be an IPv4 CIDR of at least /24, such as 10.42.0.0/24."
  }
}
