# Every provider reads its credentials from environment variables the deployer exports:
# ovh: OVH_ENDPOINT, OVH_APPLICATION_KEY, OVH_APPLICATION_SECRET, OVH_CONSUMER_KEY
# openstack: OS_AUTH_URL, OS_USERNAME, OS_PASSWORD, OS_TENANT_ID, OS_USER_DOMAIN_NAME,
#            OS_PROJECT_DOMAIN_NAME (OS_REGION_NAME is also set; region below wins)
# cloudflare: CLOUDFLARE_API_TOKEN
provider "ovh" {}

provider "openstack" {
  region = var.region
}

provider "cloudflare" {}
