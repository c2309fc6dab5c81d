//! The `ingest` command line: `run`, `migrate`, `healthcheck`, `device`.

use anyhow::Context;
use clap::Parser;
use ingest::config::{redact_url, Cli, Command};
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
        Command::Migrate(db) => {
            let pool = ingest::db::pool(&db.database_url, db.database_ca.as_deref(), 1)?;
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
            Ok(())
        }
        Command::Device(args) => ingest::device_cli::run(args, &mut std::io::stdout().lock()).await,
        Command::Healthcheck(h) => ingest::http::check_ready(h.addr)
            .await
            .map_err(|e| anyhow::anyhow!("not ready: {e}")),
    }
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
