//! The `ingest` command line: `run`, `migrate`, `healthcheck`, `device`.

use anyhow::Context;
use clap::Parser;
use ingest::config::{redact_url, Cli, Command, MigrateArgs};
use ingest::shutdown::Shutdown;
use tracing_subscriber::EnvFilter;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_logs(&cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("ingest: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(cli.command)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("ingest: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn dispatch(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Run(args) => {
            let metrics = ingest::metrics::install().context("installing the metrics recorder")?;
            let shutdown = Shutdown::new();
            shutdown
                .trigger_on_signals()
                .context("installing signal handlers")?;
            ingest::service::run(*args, Some(metrics), shutdown).await
        }
        Command::Migrate(args) => migrate(args).await,
        Command::Device(args) => ingest::device_cli::run(args, &mut std::io::stdout().lock()).await,
        Command::Healthcheck(h) => ingest::http::check_ready(h.addr)
            .await
            .map_err(|e| anyhow::anyhow!("not ready: {e}")),
    }
}

/// `ingest migrate`: the schema, then PowerSync's grants and the deployment's accounts (the
/// service account, the probe device) when asked. Every input is checked before the database
/// is touched.
async fn migrate(args: MigrateArgs) -> anyhow::Result<()> {
    use ingest::device_cli::{requested_account, PROBE_DEVICE, SERVICE_ACCOUNT};
    let role = args.powersync_role.filter(|r| !r.is_empty());
    if let Some(r) = &role {
        ingest::schema::check_role_name(r)?;
    }
    let mut accounts = Vec::new();
    for (account_role, id, file) in [
        (
            SERVICE_ACCOUNT,
            args.service_account,
            args.service_account_secret_file.as_deref(),
        ),
        (
            PROBE_DEVICE,
            args.probe_device,
            args.probe_device_secret_file.as_deref(),
        ),
    ] {
        if let Some((id, secret)) = requested_account(&account_role, id, file)? {
            accounts.push((account_role, id, secret));
        }
    }
    if let (Some(a), Some(b)) = (accounts.first(), accounts.get(1)) {
        if a.1 == b.1 {
            anyhow::bail!(
                "the {} and the {} are both {:?}: give them different ids",
                a.0.label,
                b.0.label,
                a.1
            );
        }
    }

    let db = &args.db;
    let pool = ingest::db::pool(&db.database_url, db.database_ca.as_deref(), 1)?;
    {
        let mut client = pool
            .get()
            .await
            .with_context(|| format!("cannot connect to {}", redact_url(&db.database_url)))?;
        let opts = ingest::schema::SchemaOptions {
            chunk_interval: db.chunk_interval,
        };
        let ran = ingest::schema::migrate(&mut client, &opts).await?;
        println!(
            "schema up to date (version {}, {ran} migration(s) applied now)",
            ingest::schema::latest_version()
        );
        if let Some(role) = &role {
            let granted = ingest::schema::grant_powersync(&mut client, role)
                .await
                .with_context(|| format!("granting PowerSync's role {role:?} read access"))?;
            println!(
                "PowerSync role {role} may read {}",
                granted.tables.join(", ")
            );
            if !granted.replication {
                tracing::warn!(
                    role = %role,
                    "the PowerSync role lacks the REPLICATION attribute: PowerSync cannot replicate until it has it (on OVH: the user's `replication` role)"
                );
            }
        }
    }
    if !accounts.is_empty() {
        let registry = ingest::auth::Registry::new(pool);
        for (account_role, id, secret) in accounts {
            let label = account_role.label;
            let report = ingest::device_cli::ensure_account(&registry, &account_role, &id, &secret)
                .await
                .with_context(|| format!("ensuring the {label} {id:?}"))?;
            println!("{label} {id}: {}", report.outcome);
            tracing::info!(account = %id, kind = %account_role.kind, outcome = %report.outcome, "{label} ensured");
            if !report.enabled {
                tracing::warn!(
                    account = %id,
                    "the {label} is disabled and stays so: its clients cannot log in until `ingest device enable {id}`"
                );
            }
        }
    }
    Ok(())
}

fn init_logs(format: &str) {
    let filter = EnvFilter::try_from_env("INGEST_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,rmqtt=warn,rmqtt_net=warn"));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}
