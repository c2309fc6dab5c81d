//! The names the deployer and the infrastructure (terraform/, compose/) agree on.
//!
//! Every list here is checked against the real files by `deployer/tests/infra_offline.rs`:
//! each environment under `terraform/environments/` must declare every variable in
//! [`TF_VARS`] and every output in [`TF_OUTPUTS`]; the compose bundle must use only the
//! `.env` keys in [`COMPOSE_ENV_KEYS`]. Change a name here and in the infrastructure together.

/// The environments, one OVH Public Cloud project and one directory
/// `terraform/environments/<env>/` each.
pub const ENVIRONMENTS: &[&str] = &["test", "preprod", "prod"];

/// Directory of the environment roots, relative to the repository root.
pub const TF_ENVIRONMENTS_DIR: &str = "terraform/environments";

/// Directory of the per-env bootstrap root (local state: state bucket + S3 credentials).
pub const TF_BOOTSTRAP_DIR: &str = "terraform/bootstrap";

/// Terraform variables the deployer sets as `TF_VAR_<name>` for every env root (and every
/// env declares them). `operator_cidrs` is a `list(string)` passed as a JSON array; the others
/// are strings. Sizes (flavors, plans, replicas) are per-env defaults in `terraform.tfvars`.
pub const TF_VARS: &[&str] = &[
    "project_id",
    "region",
    "ssh_public_key",
    "operator_cidrs",
    "base_domain",
    "cloudflare_zone_id",
    "acme_email",
];

/// The `TF_VAR_*` variables that hold a list and must be passed as a JSON array.
pub const TF_LIST_VARS: &[&str] = &["operator_cidrs"];

/// Variables the deployer sets for `terraform/bootstrap` (`TF_VAR_<name>`).
pub const TF_BOOTSTRAP_VARS: &[&str] = &["project_id", "env_name"];

/// Outputs of `terraform/bootstrap` (read once by the operator, then stored in
/// `credentials/<env>.enc.env` as `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`).
pub const TF_BOOTSTRAP_OUTPUTS: &[&str] =
    &["state_bucket", "s3_access_key_id", "s3_secret_access_key"];

/// Outputs every env root declares; the deployer reads them with `terraform output -json`.
/// `db_port` is a number, every other one a string. While a database is disabled
/// ([`DB_TOGGLE_VAR`] = false) the `db_*` and `powersync_db_*` outputs are `null`.
pub const TF_OUTPUTS: &[&str] = &[
    "instance_id",
    "instance_name",
    "public_ipv4",
    "private_ipv4",
    "ssh_user",
    "api_domain",
    "powersync_domain",
    "mqtt_domain",
    "db_host",
    "db_port",
    "db_name",
    "db_user",
    "db_password",
    "powersync_db_user",
    "powersync_db_password",
    "db_ca_certificate",
    "openstack_region",
];

/// Outputs that are declared `sensitive = true`: never print their values.
pub const TF_SENSITIVE_OUTPUTS: &[&str] = &["db_password", "powersync_db_password"];

/// The boolean variable (declared by every env, default `true`) that removes or recreates an
/// env's managed database without touching the network or the instance:
/// `terraform apply -var database_enabled=false` ("db stop") / `=true` ("db start").
/// Only preprod may set it to false; prod's validation refuses it.
pub const DB_TOGGLE_VAR: &str = "database_enabled";

/// Terraform versions accepted by every root (`required_version`); 1.11.2-1.11.3 cannot write
/// state to OVH Object Storage.
pub const TF_REQUIRED_VERSION: &str = ">= 1.11.4, < 2.0.0";

/// State bucket name (one bucket per OVH project, i.e. per env).
pub const STATE_BUCKET: &str = "accoreboot-tfstate";
/// State object key inside the bucket: `<env>/terraform.tfstate`.
pub const STATE_KEY_SUFFIX: &str = "terraform.tfstate";
/// S3 region of OVH Object Storage used by the backend.
pub const STATE_REGION: &str = "eu-west-par";
/// S3 endpoint of OVH Object Storage used by the backend.
pub const STATE_ENDPOINT: &str = "https://s3.eu-west-par.io.cloud.ovh.net/";

/// The state key of an env: `<env>/terraform.tfstate`.
pub fn state_key(env: &str) -> String {
    format!("{env}/{STATE_KEY_SUFFIX}")
}

/// OpenStack Keystone URL the deployer exports as `OS_AUTH_URL`.
pub const OS_AUTH_URL: &str = "https://auth.cloud.ovh.net/v3/";
/// `OS_USER_DOMAIN_NAME` and `OS_PROJECT_DOMAIN_NAME` on OVH.
pub const OS_DOMAIN_NAME: &str = "Default";

/// Keys of `credentials/common.enc.env` (shared by all envs).
pub const COMMON_CREDENTIALS: &[&str] = &[
    "OVH_ENDPOINT",
    "OVH_APPLICATION_KEY",
    "OVH_APPLICATION_SECRET",
    "OVH_CONSUMER_KEY",
    "CLOUDFLARE_API_TOKEN",
    "CLOUDFLARE_ZONE_ID",
    "SSH_PUBLIC_KEY",
    "OPERATOR_CIDRS",
    "ACME_EMAIL",
    "BASE_DOMAIN",
];

/// Required keys of `credentials/<env>.enc.env` (one OVH Public Cloud project per env).
pub const ENV_CREDENTIALS: &[&str] = &[
    "OVH_CLOUD_PROJECT_ID",
    "OS_USERNAME",
    "OS_PASSWORD",
    "OS_REGION_NAME",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "BACKEND_IMAGE",
    "BACKEND_MQTT_PASSWORD",
    "TEST_DEVICE_PASSWORD",
];

/// Optional keys of `credentials/<env>.enc.env`.
pub const ENV_OPTIONAL_CREDENTIALS: &[&str] =
    &["POWERSYNC_JWKS_URI", "INGEST_IMAGE", "BACKEND_REPLICAS"];

/// MQTT username of the backend replicas' service account (`BACKEND_MQTT_USERNAME` in the
/// compose `.env`). Its secret is the env's `BACKEND_MQTT_PASSWORD`; the compose one-shot
/// `ingest-migrate` creates the account, or brings it to that secret, at every deploy.
pub const BACKEND_SERVICE_ACCOUNT: &str = "backend";

/// MQTT username of the probe device `deployer verify` publishes as, to its own topic
/// (`devices/<id>/positions`): a registered device account (`TEST_DEVICE_ID` in the compose
/// `.env`) whose secret is the env's `TEST_DEVICE_PASSWORD`, ensured by `ingest-migrate` at
/// every deploy like the backend's service account.
pub const PROBE_DEVICE: &str = "deployer-probe";

/// Shortest MQTT secret accepted for an account `ingest-migrate` ensures
/// (`BACKEND_MQTT_PASSWORD`, `TEST_DEVICE_PASSWORD`): the ingest refuses shorter ones.
pub const MIN_MQTT_SECRET_LEN: usize = 24;

/// Longest such secret accepted (the broker refuses longer passwords at login).
pub const MAX_MQTT_SECRET_LEN: usize = 256;

/// Plain MQTT port of the ingest; open to the Internet only where the env's Terraform
/// variable [`PLAIN_MQTT_VAR`] is true (test).
pub const MQTT_PORT: u16 = 1883;

/// MQTT over TLS port of the ingest (Caddy's certificate for the MQTT domain); open in every
/// env.
pub const MQTTS_PORT: u16 = 8883;

/// The boolean variable of every env root that opens [`MQTT_PORT`] (and plain WebSocket) to
/// the Internet; set in the env's `terraform.tfvars`, default false.
pub const PLAIN_MQTT_VAR: &str = "allow_plain_mqtt";

/// File descriptors the ingest holds per MQTT connection (the device's socket and both ends
/// of the front gate's loopback relay; `ingest/src/broker/fd_limit.rs`, ADR 0002).
pub const INGEST_FDS_PER_CONNECTION: u64 = 3;

/// Descriptors the ingest keeps besides connections (WAL, database pool, HTTP).
pub const INGEST_FD_RESERVE: u64 = 256;

/// The ingest's default `--max-connections` (`INGEST_MAX_CONNECTIONS`).
pub const INGEST_DEFAULT_MAX_CONNECTIONS: u64 = 100_000;

/// Directory on the instance where the compose bundle lives.
pub const REMOTE_DIR: &str = "/opt/accoreboot";

/// Files of `compose/` the deployer ships to [`REMOTE_DIR`] (paths relative to `compose/`).
pub const COMPOSE_BUNDLE_FILES: &[&str] = &[
    "docker-compose.yml",
    "Caddyfile",
    "powersync/config.yaml",
    "powersync/sync-rules.yaml",
];

/// Keys of the `.env` file the deployer writes next to `docker-compose.yml` (mode 0600).
pub const COMPOSE_ENV_KEYS: &[&str] = &[
    "ENV_NAME",
    "API_DOMAIN",
    "POWERSYNC_DOMAIN",
    "MQTT_DOMAIN",
    "ACME_EMAIL",
    "BACKEND_IMAGE",
    "BACKEND_REPLICAS",
    "INGEST_IMAGE",
    "DATABASE_URL",
    "PS_DATA_SOURCE_URI",
    "PS_STORAGE_URI",
    "PS_JWKS_URI",
    "POWERSYNC_DB_USER",
    "BACKEND_MQTT_USERNAME",
    "BACKEND_MQTT_PASSWORD",
    "TEST_DEVICE_ID",
    "TEST_DEVICE_PASSWORD",
];

/// File name of the database CA certificate written beside `docker-compose.yml`.
pub const DB_CA_FILE: &str = "db-ca.pem";

/// Where the compose file mounts [`DB_CA_FILE`] inside the ingest, backend and PowerSync
/// containers; use it in `DATABASE_URL` (`sslmode=verify-full&sslrootcert=...`).
pub const DB_CA_CONTAINER_PATH: &str = "/run/secrets/db-ca.pem";

/// Database (on the same managed server) that holds PowerSync's bucket storage; the deployer
/// builds `PS_STORAGE_URI` with it and the PowerSync user.
pub const POWERSYNC_STORAGE_DATABASE: &str = "powersync_storage";

/// Marker file that cloud-init writes last, once Docker is installed and the data volume is
/// mounted; the deployer waits for it over SSH before shipping the bundle.
pub const CLOUD_INIT_MARKER: &str = "/var/lib/cloud/instance/boot-finished-docker";

/// Mount point of the persistent data volume on the instance (ingest WAL, Caddy's data).
pub const DATA_MOUNT: &str = "/srv/data";

/// Port of the ingest's HTTP endpoint (health, metrics), bound to 127.0.0.1 on the host.
pub const INGEST_HTTP_PORT: u16 = 8080;
