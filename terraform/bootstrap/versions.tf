# Bootstrap root: run once per environment, with LOCAL state (the remote state bucket does
# not exist yet). It creates that bucket and the S3 user the environment root uses.
terraform {
  # 1.11.2 and 1.11.3 failed to write state to OVH Object Storage (terraform-provider-ovh #932).
  required_version = ">= 1.11.4, < 2.0.0"

  required_providers {
    ovh = {
      source  = "ovh/ovh"
      version = "~> 2.19"
    }
  }
}

# Credentials come from OVH_ENDPOINT / OVH_APPLICATION_KEY / OVH_APPLICATION_SECRET /
# OVH_CONSUMER_KEY, exported by the deployer; nothing secret is written here.
provider "ovh" {}
