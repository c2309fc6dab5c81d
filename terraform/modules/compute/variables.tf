variable "name" {
  description = "Instance name, \"<env>-backend\" by the project's convention."
  type        = string
}

variable "flavor" {
  description = "OpenStack flavor of the instance."
  type        = string
  default     = "b3-8"
}

variable "image_name" {
  description = "OpenStack image name of the instance (Debian 12 by default)."
  type        = string
  default     = "Debian 12"
}

variable "ssh_user" {
  description = "Default user of the image: \"debian\" for Debian images, \"ubuntu\" for Ubuntu."
  type        = string
  default     = "debian"

  validation {
    condition     = contains(["debian", "ubuntu"], var.ssh_user)
    error_message = "ssh_user must be \"debian\" or \"ubuntu\"."
  }
}

variable "ssh_public_key" {
  description = "Operator's SSH public key (OpenSSH format)."
  type        = string

  validation {
    condition     = can(regex("^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)) [A-Za-z0-9+/=]+", var.ssh_public_key))
    error_message = "ssh_public_key must be an OpenSSH public key (ssh-ed25519 AAAA..., ssh-rsa AAAA...)."
  }
}

variable "operator_cidrs" {
  description = "CIDRs allowed to reach SSH (port 22)."
  type        = list(string)

  validation {
    condition     = length(var.operator_cidrs) > 0 && alltrue([for c in var.operator_cidrs : can(cidrhost(c, 0))])
    error_message = "operator_cidrs must be a non-empty list of CIDRs such as [\"203.0.113.7/32\"]."
  }
}

variable "private_network_id" {
  description = "Regional OpenStack id of the private network."
  type        = string
}

variable "private_cidr" {
  description = "CIDR of the private subnet."
  type        = string
}

variable "private_ipv4" {
  description = "Fixed address of the instance on the private subnet."
  type        = string
}

variable "data_volume_size_gb" {
  description = "Size of the persistent data volume (ingest WAL, Caddy data), in GB."
  type        = number
  default     = 20

  validation {
    condition     = var.data_volume_size_gb >= 10
    error_message = "data_volume_size_gb must be at least 10."
  }
}

variable "data_volume_type" {
  description = "Block storage type: classic or high-speed."
  type        = string
  default     = "classic"
}

variable "data_mount" {
  description = "Mount point of the data volume on the instance."
  type        = string
  default     = "/srv/data"
}

variable "data_uid" {
  description = "Numeric uid/gid owning the data directories (the ingest and Caddy containers run as it)."
  type        = number
  default     = 10001
}

variable "remote_dir" {
  description = "Directory of the compose bundle on the instance."
  type        = string
  default     = "/opt/accoreboot"
}

variable "boot_marker" {
  description = "File cloud-init writes last; the deployer waits for it."
  type        = string
  default     = "/var/lib/cloud/instance/boot-finished-docker"
}

variable "allow_plain_mqtt" {
  description = "Open plain MQTT (TCP and WebSocket) to the Internet."
  type        = bool
  default     = false
}

variable "mqtt_port" {
  description = "Plain MQTT TCP port."
  type        = number
  default     = 1883
}

variable "mqtts_port" {
  description = "MQTT over TLS port."
  type        = number
  default     = 8883
}

variable "mqtt_ws_port" {
  description = "Plain MQTT over WebSocket port."
  type        = number
  default     = 8083
}

variable "mqtt_wss_port" {
  description = "MQTT over secure WebSocket port (TLS terminated by Caddy)."
  type        = number
  default     = 8084
}
