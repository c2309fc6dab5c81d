# Sizes and settings of the prod environment (not secret). Same sizes as test for now; move to
# db_plan = "business" (2 nodes) when the fleet needs a standby.
env_name            = "prod"
instance_flavor     = "b3-8"
data_volume_size_gb = 50
db_plan             = "essential"
db_flavor           = "db1-4"
private_cidr        = "10.44.0.0/24"
vlan_id             = 44
allow_plain_mqtt    = false
