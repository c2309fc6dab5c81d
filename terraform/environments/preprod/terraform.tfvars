# Sizes and settings of the preprod environment (not secret). Its database can be removed and
# recreated on demand: `deployer db stop preprod` / `deployer db start preprod` run
# `terraform apply -var database_enabled=false|true` (see docs/infrastructure.md).
env_name            = "preprod"
instance_flavor     = "b3-8"
data_volume_size_gb = 20
db_plan             = "essential"
db_flavor           = "db1-4"
private_cidr        = "10.43.0.0/24"
vlan_id             = 43
allow_plain_mqtt    = false
