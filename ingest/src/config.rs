//! Command-line and environment configuration (clap). Every option of `ingest run` can also be
//! set through an `INGEST_*` environment variable, which is how the compose file sets them.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use bytesize::ByteSize;
use clap::{Args, Parser, Subcommand};

/// GPS tracker ingest: an MQTT broker that acknowledges a position only once it is durable,
/// and writes every position into TimescaleDB exactly once.
#[derive(Debug, Parser)]
#[command(name = "ingest", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// Log format: `text` for people, `json` for log collectors.
    #[arg(long, env = "INGEST_LOG_FORMAT", default_value = "text", global = true, value_parser = ["text", "json"])]
    pub log_format: String,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the broker, the WAL writer and the HTTP endpoints until SIGTERM.
    Run(Box<RunArgs>),
    /// Apply the database schema (plus PowerSync's grants and a service account when asked) and exit.
    Migrate(MigrateArgs),
    /// Exit 0 when the local ingest answers /readyz with 200 (for container health checks).
    Healthcheck(HealthcheckArgs),
    /// Manage MQTT accounts (devices and services): add, list, disable, enable, rotate-secret.
    Device(DeviceArgs),
}

#[derive(Debug, Args, Clone)]
pub struct DeviceArgs {
    #[command(flatten)]
    pub db: DbArgs,

    #[command(subcommand)]
    pub action: DeviceAction,
}

/// What to do with the account registry. Secrets are printed once, on standard output only.
#[derive(Debug, Subcommand, Clone)]
pub enum DeviceAction {
    /// Register an account and print its new secret (shown only this once).
    Add {
        /// Account id = MQTT username: 1-64 characters of [A-Za-z0-9._:-], or user/device for OwnTracks.
        id: String,
        /// A service account (backend): reads every position, sends commands, publishes no positions.
        #[arg(long)]
        service: bool,
    },
    /// List accounts (id, kind, enabled, created, last seen); never shows secrets.
    List,
    /// Refuse new logins and close the account's sessions within seconds.
    Disable { id: String },
    /// Allow logins again.
    Enable { id: String },
    /// Issue a new secret (printed once); sessions using the old one are closed within seconds.
    RotateSecret { id: String },
}

/// `ingest migrate`: the schema, and what a deployment needs around it, all idempotent so that
/// the compose bundle runs it at every deploy.
#[derive(Debug, Args, Clone)]
pub struct MigrateArgs {
    #[command(flatten)]
    pub db: DbArgs,

    /// Database role PowerSync replicates with: granted SELECT on every table of the
    /// `powersync` publication. The role must exist (it is not created here).
    #[arg(long, env = "INGEST_POWERSYNC_ROLE")]
    pub powersync_role: Option<String>,

    /// Service account (MQTT username) to create, or to bring to the given secret, e.g. the
    /// backend replicas' account. Its secret comes from the INGEST_SERVICE_ACCOUNT_SECRET
    /// environment variable or --service-account-secret-file, never from an argument.
    #[arg(long, env = "INGEST_SERVICE_ACCOUNT")]
    pub service_account: Option<String>,

    /// File holding the service account's secret (one trailing line break is ignored).
    #[arg(long, env = "INGEST_SERVICE_ACCOUNT_SECRET_FILE")]
    pub service_account_secret_file: Option<PathBuf>,

    /// Device account to create, or to bring to the given secret, that a deployment check
    /// (`deployer verify`) publishes as, to its own topic only. Its secret comes from the
    /// INGEST_PROBE_DEVICE_SECRET environment variable or --probe-device-secret-file.
    #[arg(long, env = "INGEST_PROBE_DEVICE")]
    pub probe_device: Option<String>,

    /// File holding the probe device's secret (one trailing line break is ignored).
    #[arg(long, env = "INGEST_PROBE_DEVICE_SECRET_FILE")]
    pub probe_device_secret_file: Option<PathBuf>,
}

#[derive(Debug, Args, Clone)]
pub struct DbArgs {
    /// PostgreSQL URL, e.g. postgres://user:password@host:5432/db?sslmode=require.
    #[arg(long, env = "INGEST_DATABASE_URL", hide_env_values = true)]
    pub database_url: String,

    /// Time span of one hypertable chunk (applies to chunks created from now on).
    #[arg(long, env = "INGEST_CHUNK_INTERVAL", default_value = "1d", value_parser = humantime::parse_duration)]
    pub chunk_interval: Duration,

    /// PEM file of the CA that signs the database server certificate (enables TLS to the
    /// database; OVH managed databases require it).
    #[arg(long, env = "INGEST_DATABASE_CA")]
    pub database_ca: Option<PathBuf>,
}

#[derive(Debug, Args, Clone)]
pub struct HealthcheckArgs {
    /// Address of the ingest's HTTP endpoint.
    #[arg(
        long,
        env = "INGEST_HEALTHCHECK_ADDR",
        default_value = "127.0.0.1:8080"
    )]
    pub addr: SocketAddr,
}

#[derive(Debug, Args, Clone)]
pub struct RunArgs {
    #[command(flatten)]
    pub db: DbArgs,

    /// MQTT over TCP (plain). Use `none` to disable.
    #[arg(long, env = "INGEST_MQTT_LISTEN", default_value = "0.0.0.0:1883", value_parser = parse_listen)]
    pub mqtt_listen: Listen,

    /// MQTT over WebSocket (plain). `none` to disable.
    #[arg(long, env = "INGEST_WS_LISTEN", default_value = "none", value_parser = parse_listen)]
    pub ws_listen: Listen,

    /// HTTP endpoint for /healthz, /readyz and /metrics.
    #[arg(long, env = "INGEST_HTTP_LISTEN", default_value = "0.0.0.0:8080")]
    pub http_listen: SocketAddr,

    /// Directory of the write-ahead log (on a persistent volume).
    #[arg(long, env = "INGEST_WAL_DIR", default_value = "wal")]
    pub wal_dir: PathBuf,

    /// Size of one WAL segment file.
    #[arg(long, env = "INGEST_WAL_SEGMENT_SIZE", default_value = "64MiB")]
    pub wal_segment_size: ByteSize,

    /// Maximum WAL backlog (bytes not yet in the database). When reached, publishes are not
    /// acknowledged (devices keep their data) until the database catches up. `auto` = a quarter
    /// of the WAL volume's size.
    #[arg(long, env = "INGEST_WAL_BUDGET", default_value = "auto", value_parser = parse_budget)]
    pub wal_budget: Budget,

    /// Rows per database batch (a batch is written when full or when the linger time passes).
    #[arg(long, env = "INGEST_BATCH_MAX_ROWS", default_value_t = 20_000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub batch_max_rows: u32,

    /// How long the writer waits for a batch to fill.
    #[arg(long, env = "INGEST_BATCH_LINGER", default_value = "200ms", value_parser = humantime::parse_duration)]
    pub batch_linger: Duration,

    /// Connections in the database pool.
    #[arg(long, env = "INGEST_DB_POOL_SIZE", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub db_pool_size: u32,

    /// Reject points whose time is further ahead of the reception time than this.
    #[arg(long, env = "INGEST_MAX_FUTURE", default_value = "5m", value_parser = humantime::parse_duration)]
    pub max_future: Duration,

    /// Reject points older than this at reception.
    #[arg(long, env = "INGEST_MAX_PAST", default_value = "90d", value_parser = humantime::parse_duration)]
    pub max_past: Duration,

    /// Largest MQTT payload accepted (bigger messages are rejected and kept in `rejects`).
    #[arg(long, env = "INGEST_MAX_PAYLOAD", default_value = "256KiB")]
    pub max_payload: ByteSize,

    /// Deadline of the graceful drain on SIGTERM (keep the compose stop_grace_period longer).
    #[arg(long, env = "INGEST_SHUTDOWN_DEADLINE", default_value = "20s", value_parser = humantime::parse_duration)]
    pub shutdown_deadline: Duration,

    /// Accept MQTT clients without credentials. For local demos only: anyone who reaches the
    /// port can then publish as any device.
    #[arg(long, env = "INGEST_ALLOW_ANONYMOUS", default_value_t = false)]
    pub allow_anonymous: bool,

    /// MQTT over TLS, usually 0.0.0.0:8883 (needs --tls-cert and --tls-key). `none` to disable.
    #[arg(long, env = "INGEST_MQTTS_LISTEN", default_value = "none", value_parser = parse_listen)]
    pub mqtts_listen: Listen,

    /// MQTT over secure WebSocket, for browsers (needs --tls-cert and --tls-key). `none` to disable.
    #[arg(long, env = "INGEST_WSS_LISTEN", default_value = "none", value_parser = parse_listen)]
    pub wss_listen: Listen,

    /// PEM certificate chain of the MQTT host name (e.g. the one Caddy obtains from Let's Encrypt).
    #[arg(long, env = "INGEST_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key of --tls-cert.
    #[arg(long, env = "INGEST_TLS_KEY")]
    pub tls_key: Option<PathBuf>,

    /// How often the TLS files are checked for a renewed certificate.
    #[arg(long, env = "INGEST_TLS_RELOAD_INTERVAL", default_value = "30s", value_parser = parse_positive_duration)]
    pub tls_reload_interval: Duration,

    /// Time a client has for the TLS/WebSocket handshake and for sending CONNECT.
    #[arg(long, env = "INGEST_HANDSHAKE_TIMEOUT", default_value = "10s", value_parser = parse_positive_duration)]
    pub handshake_timeout: Duration,

    /// Most MQTT clients connected at once (0 = no limit).
    #[arg(long, env = "INGEST_MAX_CONNECTIONS", default_value_t = 100_000)]
    pub max_connections: usize,

    /// New MQTT logins accepted per second, all clients together (0 = no limit).
    #[arg(long, env = "INGEST_MAX_CONNECTION_RATE", default_value_t = 1_000)]
    pub max_connection_rate: u32,

    /// Messages per second one account may publish (0 = no limit).
    #[arg(long, env = "INGEST_DEVICE_MESSAGE_RATE", default_value_t = 50)]
    pub device_message_rate: u32,

    /// Messages an account may publish at once above its rate (offline buffer flushes).
    #[arg(long, env = "INGEST_DEVICE_MESSAGE_BURST", default_value_t = 500)]
    pub device_message_burst: u32,

    /// How long a verified login is trusted before the registry is asked again whether the
    /// account is still enabled; also how soon connected sessions of a disabled account close.
    #[arg(long, env = "INGEST_AUTH_CACHE_TTL", default_value = "5s", value_parser = parse_positive_duration)]
    pub auth_cache_ttl: Duration,
    /// Longest a login waits for an argon2 verification slot before it is refused as busy
    /// (the device retries). Default: half the handshake timeout.
    #[arg(long, env = "INGEST_AUTH_VERIFY_WAIT", value_parser = parse_positive_duration)]
    pub auth_verify_wait: Option<Duration>,
    /// argon2 verifications at once (each takes ~19 MiB and a core). Default: one per core,
    /// at most 8.
    #[arg(long, env = "INGEST_AUTH_VERIFY_SLOTS", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub auth_verify_slots: Option<u16>,
}

fn parse_positive_duration(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s)
        .map_err(|e| format!("expected a duration such as 5s or 1m: {e}"))?;
    if d.is_zero() {
        return Err("must be greater than zero".into());
    }
    Ok(d)
}

/// A listen address, or disabled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listen {
    Off,
    On(SocketAddr),
}

impl Listen {
    pub fn addr(self) -> Option<SocketAddr> {
        match self {
            Listen::Off => None,
            Listen::On(a) => Some(a),
        }
    }
}

fn parse_listen(s: &str) -> Result<Listen, String> {
    if s.eq_ignore_ascii_case("none") || s.eq_ignore_ascii_case("off") || s.is_empty() {
        return Ok(Listen::Off);
    }
    s.parse::<SocketAddr>()
        .map(Listen::On)
        .map_err(|e| format!("expected HOST:PORT (e.g. 0.0.0.0:1883) or `none`: {e}"))
}

/// The WAL disk budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Budget {
    /// A quarter of the WAL volume's size, computed at start.
    Auto,
    Bytes(u64),
}

fn parse_budget(s: &str) -> Result<Budget, String> {
    if s.eq_ignore_ascii_case("auto") {
        return Ok(Budget::Auto);
    }
    let b: ByteSize = s
        .parse()
        .map_err(|e| format!("expected a size such as 2GiB or `auto`: {e}"))?;
    if b.as_u64() < 1024 * 1024 {
        return Err("the WAL budget must be at least 1MiB".into());
    }
    Ok(Budget::Bytes(b.as_u64()))
}

/// Hides the password of a PostgreSQL URL for logs and errors.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}{}:***{}", &url[..scheme + 3], user, &url[at..])
        }
        _ => url.split('?').next().unwrap_or(url).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_parses_addresses_and_none() {
        assert_eq!(parse_listen("none").unwrap(), Listen::Off);
        assert_eq!(
            parse_listen("127.0.0.1:1883").unwrap(),
            Listen::On("127.0.0.1:1883".parse().unwrap())
        );
        assert!(parse_listen("localhost").unwrap_err().contains("HOST:PORT"));
    }

    #[test]
    fn budget_parses_sizes_and_refuses_tiny_or_garbage() {
        assert_eq!(parse_budget("auto").unwrap(), Budget::Auto);
        assert_eq!(
            parse_budget("2GiB").unwrap(),
            Budget::Bytes(2 * 1024 * 1024 * 1024)
        );
        assert!(parse_budget("10").is_err());
        assert!(parse_budget("lots").is_err());
    }

    #[test]
    fn redaction_hides_the_password() {
        let r = redact_url("postgres://app:s3cret@db:5432/x?sslmode=require");
        assert!(!r.contains("s3cret"));
        assert!(r.starts_with("postgres://app:***@db"));
        assert_eq!(redact_url("postgres://db/x"), "postgres://db/x");
    }

    #[test]
    fn cli_refuses_bad_values_with_clear_errors() {
        let base = ["ingest", "run", "--database-url", "postgres://x@y/z"];
        let err =
            Cli::try_parse_from(base.iter().chain(["--batch-max-rows", "0"].iter())).unwrap_err();
        assert!(err.to_string().contains("batch-max-rows"));
        let err =
            Cli::try_parse_from(base.iter().chain(["--max-future", "soon"].iter())).unwrap_err();
        assert!(err.to_string().contains("max-future"));
        let err = Cli::try_parse_from(["ingest", "run"]).unwrap_err();
        assert!(err.to_string().contains("database-url"));
        assert!(Cli::try_parse_from(base).is_ok());
    }

    #[test]
    fn security_flags_parse_and_refuse_nonsense() {
        let base = ["ingest", "run", "--database-url", "postgres://x@y/z"];
        let cli = Cli::try_parse_from(
            base.iter().chain(
                [
                    "--mqtts-listen",
                    "127.0.0.1:8883",
                    "--tls-cert",
                    "c.pem",
                    "--tls-key",
                    "k.pem",
                ]
                .iter(),
            ),
        )
        .unwrap();
        let Command::Run(args) = cli.command else {
            panic!("not run")
        };
        assert_eq!(
            args.mqtts_listen,
            Listen::On("127.0.0.1:8883".parse().unwrap())
        );
        assert_eq!(args.wss_listen, Listen::Off);
        assert_eq!(args.auth_cache_ttl, Duration::from_secs(5));
        assert_eq!(args.auth_verify_wait, None);
        assert_eq!(args.auth_verify_slots, None);
        let cli = Cli::try_parse_from(
            base.iter()
                .chain(["--auth-verify-wait", "2s", "--auth-verify-slots", "3"].iter()),
        )
        .unwrap();
        let Command::Run(args) = cli.command else {
            panic!("not run")
        };
        assert_eq!(args.auth_verify_wait, Some(Duration::from_secs(2)));
        assert_eq!(args.auth_verify_slots, Some(3));
        for bad in [
            ["--auth-verify-slots", "0"],
            ["--auth-verify-slots", "many"],
            ["--auth-verify-wait", "0s"],
            ["--auth-verify-wait", "soon"],
        ] {
            let err = Cli::try_parse_from(base.iter().chain(bad.iter())).unwrap_err();
            assert!(err.to_string().contains(bad[0]), "{bad:?}: {err}");
        }
        let err = Cli::try_parse_from(base.iter().chain(["--handshake-timeout", "0s"].iter()))
            .unwrap_err();
        assert!(err.to_string().contains("greater than zero"), "{err}");
        let err = Cli::try_parse_from(base.iter().chain(["--max-connection-rate", "lots"].iter()))
            .unwrap_err();
        assert!(err.to_string().contains("max-connection-rate"), "{err}");
    }

    #[test]
    fn migrate_options_parse() {
        let cli = Cli::try_parse_from([
            "ingest",
            "migrate",
            "--database-url",
            "postgres://x@y/z",
            "--powersync-role",
            "powersync",
            "--service-account",
            "backend",
            "--service-account-secret-file",
            "/run/secrets/backend",
            "--probe-device",
            "deployer-probe",
            "--probe-device-secret-file",
            "/run/secrets/probe",
        ])
        .unwrap();
        let Command::Migrate(m) = cli.command else {
            panic!("not migrate")
        };
        assert_eq!(m.powersync_role.as_deref(), Some("powersync"));
        assert_eq!(m.service_account.as_deref(), Some("backend"));
        assert_eq!(
            m.service_account_secret_file,
            Some(PathBuf::from("/run/secrets/backend"))
        );
        assert_eq!(m.probe_device.as_deref(), Some("deployer-probe"));
        assert_eq!(
            m.probe_device_secret_file,
            Some(PathBuf::from("/run/secrets/probe"))
        );
        // The secrets themselves have no command-line option.
        for flag in ["--service-account-secret", "--probe-device-secret"] {
            let err = Cli::try_parse_from([
                "ingest",
                "migrate",
                "--database-url",
                "postgres://x@y/z",
                flag,
                "x",
            ])
            .unwrap_err();
            assert_eq!(err.kind(), clap::error::ErrorKind::UnknownArgument, "{err}");
        }
    }

    #[test]
    fn device_subcommands_parse() {
        let db = ["--database-url", "postgres://x@y/z"];
        let parse = |args: &[&str]| {
            Cli::try_parse_from(
                ["ingest", "device"]
                    .iter()
                    .chain(db.iter())
                    .chain(args.iter()),
            )
        };
        let Command::Device(d) = parse(&["add", "dev-1", "--service"]).unwrap().command else {
            panic!()
        };
        assert!(matches!(d.action, DeviceAction::Add { ref id, service: true } if id == "dev-1"));
        assert!(matches!(
            parse(&["rotate-secret", "x"]).unwrap().command,
            Command::Device(DeviceArgs {
                action: DeviceAction::RotateSecret { .. },
                ..
            })
        ));
        assert!(
            parse(&["list"]).is_ok()
                && parse(&["disable", "x"]).is_ok()
                && parse(&["enable", "x"]).is_ok()
        );
        assert!(parse(&["add"]).is_err(), "add needs an id");
        assert!(parse(&["delete", "x"]).is_err());
    }
}
