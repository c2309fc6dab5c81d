# Sizes and settings of the test environment (not secret). The deployer sets the TF_VAR_*
# values (project, region, SSH key, operator CIDRs, domain, zone, ACME e-mail).
env_name            = "test"
instance_flavor     = "b3-8"
data_volume_size_gb = 20
db_plan             = "essential"
db_flavor           = "db1-4"
private_cidr        = "10.42.0.0/24"
vlan_id             = 42
allow_plain_mqtt    = true
