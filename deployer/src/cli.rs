//! The command line: every verb the operator uses, `deployer <command> <env>`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// One command from a fresh checkout to a verified AccoReboot edge environment on OVH.
#[derive(Debug, Parser)]
#[command(name = "deployer", version, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Args)]
pub struct Global {
    /// Print every external command (secret values masked).
    #[arg(short, long, global = true)]
    pub verbose: bool,
    /// Repository root (default: found by walking up from the current directory).
    #[arg(long, global = true, env = "DEPLOYER_REPO", value_name = "DIR")]
    pub repo: Option<PathBuf>,
    /// `-backend-config` override for `terraform init` (repeatable), e.g. endpoints.s3=URL.
    #[arg(long = "backend-config", global = true, value_name = "KEY=VALUE")]
    pub backend_config: Vec<String>,
    #[command(flatten)]
    pub ssh: SshArgs,
}

/// How the deployer reaches the instance over SSH.
#[derive(Debug, Clone, Args)]
pub struct SshArgs {
    /// known_hosts file with the env's pinned host key (default ~/.config/accoreboot/known_hosts.<env>).
    #[arg(long, global = true, env = "DEPLOYER_KNOWN_HOSTS", value_name = "FILE")]
    pub known_hosts: Option<PathBuf>,
    /// Pin this host key ("ssh-ed25519 AAAA...") on first contact instead of reading it from the console.
    #[arg(long, global = true, value_name = "KEY")]
    pub host_key: Option<String>,
    /// SSH port of the instance.
    #[arg(long, global = true, env = "DEPLOYER_SSH_PORT", default_value_t = 22)]
    pub ssh_port: u16,
    /// Private key for SSH (default: your agent, ~/.ssh/config and default keys).
    #[arg(
        long,
        global = true,
        env = "DEPLOYER_SSH_IDENTITY",
        value_name = "FILE"
    )]
    pub ssh_identity: Option<PathBuf>,
    /// Tries while waiting for SSH.
    #[arg(long, global = true, env = "DEPLOYER_SSH_TRIES", default_value_t = 15)]
    pub ssh_tries: u32,
    /// Seconds between SSH tries.
    #[arg(
        long,
        global = true,
        env = "DEPLOYER_SSH_INTERVAL",
        default_value_t = 5.0
    )]
    pub ssh_interval: f64,
    /// Tries while waiting for the cloud-init marker.
    #[arg(
        long,
        global = true,
        env = "DEPLOYER_MARKER_TRIES",
        default_value_t = 30
    )]
    pub marker_tries: u32,
    /// Seconds between cloud-init marker tries.
    #[arg(
        long,
        global = true,
        env = "DEPLOYER_MARKER_INTERVAL",
        default_value_t = 10.0
    )]
    pub marker_interval: f64,
    /// The file cloud-init writes last on the instance.
    #[arg(long, global = true, env = "DEPLOYER_CLOUD_INIT_MARKER", default_value = crate::contract::CLOUD_INIT_MARKER)]
    pub marker_path: String,
    /// Directory of the compose bundle on the instance.
    #[arg(long, global = true, env = "DEPLOYER_REMOTE_DIR", default_value = crate::contract::REMOTE_DIR)]
    pub remote_dir: String,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the env's Terraform state bucket and its S3 credentials (local state, once per env).
    Bootstrap(EnvArg),
    /// terraform init against the env's S3 state.
    Init(EnvArg),
    /// terraform plan: what apply would change.
    Plan(EnvArg),
    /// terraform apply (no prompt).
    Apply(EnvArg),
    /// terraform destroy (no prompt; asks you to type the env name unless --yes).
    Destroy(DestroyArgs),
    /// Print the env's Terraform outputs (sensitive values masked unless named).
    Output(OutputArgs),
    /// Ship the compose bundle to the instance and start it.
    Deploy(EnvArg),
    /// Dry run of deploy: which files and services would change.
    Check(EnvArg),
    /// Stop the compute instance (--shelve to stop billing too).
    Stop(StopArgs),
    /// Start (or unshelve) the compute instance.
    Start(EnvArg),
    /// Show the compute instance's status.
    State(EnvArg),
    /// Open a shell on the instance, or run a command there.
    Ssh(SshCommand),
    /// init + apply + deploy + verify.
    Up(VerifyArgs),
    /// destroy + remove local leftovers (pinned host key, .terraform).
    Down(DestroyArgs),
    /// Verify a deployed env from outside: HTTPS certificate, ingest readiness, MQTT to DB.
    Verify(VerifyArgs),
    /// Health of every service on the host, from outside and over SSH.
    Status(EnvArg),
    /// Show a service's logs on the host.
    Logs(LogsArgs),
    /// Stop or start the env's managed database (dump + destroy, recreate + restore).
    #[command(subcommand)]
    Db(DbCommand),
    /// Publish as the probe device (or locally a simulated fleet), reboot, check nothing acked is lost.
    RebootTest(RebootTestArgs),
    /// Manage the SOPS/age credentials.
    #[command(subcommand)]
    Secrets(SecretsCommand),
}

#[derive(Debug, Clone, Args)]
pub struct EnvArg {
    /// Environment: a folder under terraform/environments/ (test, preprod, prod...).
    pub env: String,
}

/// An env, and how `verify` reaches its MQTT ports.
#[derive(Debug, Clone, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub env: EnvArg,
    #[command(flatten)]
    pub mqtt: MqttProbeArgs,
}

/// Where the MQTT probe connects (the TLS certificate is always checked for the env's MQTT
/// domain, whatever address is dialled).
#[derive(Debug, Clone, Default, Args)]
pub struct MqttProbeArgs {
    /// Dial this HOST:PORT for MQTT over TLS instead of <mqtt_domain>:8883 (e.g. the
    /// instance's IP before DNS is in place).
    #[arg(long, env = "DEPLOYER_MQTTS_ADDRESS", value_name = "HOST:PORT")]
    pub mqtts_address: Option<String>,
    /// Dial this HOST:PORT for plain MQTT instead of <mqtt_domain>:1883 (only probed where
    /// the env opens plain MQTT).
    #[arg(long, env = "DEPLOYER_MQTT_ADDRESS", value_name = "HOST:PORT")]
    pub mqtt_address: Option<String>,
    /// PEM file of extra CA certificates to trust for MQTT over TLS besides the public web
    /// roots (a private CA, or Let's Encrypt's staging roots).
    #[arg(long, env = "DEPLOYER_MQTT_CA", value_name = "FILE")]
    pub mqtt_ca: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct DestroyArgs {
    #[command(flatten)]
    pub env: EnvArg,
    /// Do not ask for confirmation.
    #[arg(long)]
    pub yes: bool,
}

#[derive(Debug, Clone, Args)]
pub struct OutputArgs {
    #[command(flatten)]
    pub env: EnvArg,
    /// Print only this output's value (sensitive values are printed when asked by name).
    pub name: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct StopArgs {
    #[command(flatten)]
    pub env: EnvArg,
    /// Shelve the instance: compute billing stops, start takes longer.
    #[arg(long)]
    pub shelve: bool,
}

#[derive(Debug, Clone, Args)]
pub struct SshCommand {
    #[command(flatten)]
    pub env: EnvArg,
    /// Command to run instead of a shell.
    #[arg(last = true)]
    pub command: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct LogsArgs {
    #[command(flatten)]
    pub env: EnvArg,
    /// Compose service (ingest, caddy, backend, powersync...).
    pub service: String,
    /// Keep following new lines.
    #[arg(short, long)]
    pub follow: bool,
    /// Lines from the end.
    #[arg(long, default_value_t = 200)]
    pub tail: u32,
}

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Dump the database to Object Storage, then destroy it (billing stops).
    Stop(DbArgs),
    /// Recreate the database, restore the latest dump, redeploy.
    Start(DbArgs),
}

#[derive(Debug, Clone, Args)]
pub struct DbArgs {
    #[command(flatten)]
    pub env: EnvArg,
    /// Do not ask for confirmation.
    #[arg(long)]
    pub yes: bool,
}

#[derive(Debug, Clone, Args)]
pub struct RebootTestArgs {
    /// Environment, or `local` for this machine's ingest + TimescaleDB.
    pub env: String,
    /// Local target: simulated devices [default: 20]. A deployed env publishes as its one
    /// registered probe device.
    #[arg(long)]
    pub devices: Option<u32>,
    /// Positions per second: per simulated device locally [default: 1]; of the probe device
    /// on a deployed env [default: 2, at most 20].
    #[arg(long)]
    pub rate: Option<f64>,
    /// Seconds of publishing before the reboot.
    #[arg(long, default_value_t = 20)]
    pub before: u64,
    /// Seconds of publishing after the service is back.
    #[arg(long, default_value_t = 20)]
    pub after: u64,
    /// How a deployed env is rebooted: `reboot` (Nova soft reboot), `stop-start`, or `manual`
    /// (you reboot it yourself, e.g. from the OVH console; the test waits for the probe to
    /// lose the broker) [default: reboot].
    #[arg(long, value_parser = ["reboot", "stop-start", "manual"])]
    pub how: Option<String>,
    /// Deployed env: MQTT over `tls` (port 8883, certificate checked) or `plain` (1883, only
    /// where the env opens it) [default: tls].
    #[arg(long, value_parser = ["tls", "plain"])]
    pub transport: Option<String>,
    #[command(flatten)]
    pub probe: MqttProbeArgs,
    /// Local target: MQTT address of the ingest (host:port).
    #[arg(long, env = "DEPLOYER_LOCAL_MQTT", default_value = "127.0.0.1:1883")]
    pub mqtt: String,
    /// Local target: the ingest's HTTP address (host:port) for /readyz.
    #[arg(long, env = "DEPLOYER_LOCAL_HTTP", default_value = "127.0.0.1:8080")]
    pub http: String,
    /// Local target: the ingest binary.
    #[arg(long, env = "DEPLOYER_INGEST_BIN")]
    pub ingest_bin: Option<PathBuf>,
    /// Local target: database URL of the local TimescaleDB (default: `scripts/local-db url`).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// Decrypt to a private temporary file, open $EDITOR, re-encrypt (`common` or an env).
    Edit {
        /// `common` or an environment name.
        file: String,
    },
    /// List the credential names of an env (values masked unless --name asks for one).
    Show {
        /// Environment name.
        env: String,
        /// Print this one value in clear.
        #[arg(long)]
        name: Option<String>,
    },
    /// Generate an age key in the SOPS default keys file and print its public key.
    Init {
        /// Keys file (default: $SOPS_AGE_KEY_FILE or ~/.config/sops/age/keys.txt).
        #[arg(long)]
        keys_file: Option<PathBuf>,
    },
}
