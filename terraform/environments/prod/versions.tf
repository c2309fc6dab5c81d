terraform {
  # 1.11.2 and 1.11.3 failed to write state to OVH Object Storage (terraform-provider-ovh #932).
  required_version = ">= 1.11.4, < 2.0.0"

  required_providers {
    ovh = {
      source  = "ovh/ovh"
      version = "~> 2.19"
    }
    openstack = {
      source  = "terraform-provider-openstack/openstack"
      version = "~> 3.4"
    }
    cloudflare = {
      source  = "cloudflare/cloudflare"
      version = "~> 5.0"
    }
  }

  # State bucket created by terraform/bootstrap in this environment's OVH project.
  # Credentials: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (from credentials/<env>.enc.env).
  backend "s3" {
    bucket       = "accoreboot-tfstate"
    key          = "prod/terraform.tfstate"
    region       = "eu-west-par"
    use_lockfile = true
    endpoints = {
      s3 = "https://s3.eu-west-par.io.cloud.ovh.net/"
    }
    skip_credentials_validation = true
    skip_region_validation      = true
    skip_requesting_account_id  = true
    skip_s3_checksum            = true
    skip_metadata_api_check     = true
  }
}
