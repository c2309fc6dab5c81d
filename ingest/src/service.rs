//! `ingest run`: opens the WAL, starts the database writer, the broker and the HTTP endpoints,
//! and on SIGTERM drains them in order within the deadline.
//!
//! Drain order: stop accepting MQTT connections → close the WAL (in-flight appends are synced
//! and acknowledged, later ones refused) → let the writer flush the backlog to the database
//! until it is empty or the deadline comes → exit 0. Whatever did not reach the database is in
//! the WAL and is written after the restart.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use metrics_exporter_prometheus::PrometheusHandle;
use tracing::{info, warn};

use crate::broker::{Broker, BrokerOptions};
use crate::config::{redact_url, Budget, RunArgs};
use crate::health::Health;
use crate::http::{self, HttpState};
use crate::metrics as m;
use crate::position::ValidationConfig;
use crate::schema::SchemaOptions;
use crate::shutdown::Shutdown;
use crate::wal::{Wal, WalOptions};
use crate::writer::{Writer, WriterOptions};

/// Runs the service until SIGTERM/SIGINT (or `shutdown` is triggered) and drains it.
pub async fn run(
    args: RunArgs,
    metrics: Option<PrometheusHandle>,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    if args.allow_anonymous {
        warn!("ANONYMOUS MQTT ACCESS IS ON: anyone who reaches the port can publish as any device. For local demos only; never in production.");
    }
    let health = Arc::new(Health::new());

    std::fs::create_dir_all(&args.wal_dir).with_context(|| {
        format!(
            "cannot create the WAL directory {}: check the volume and permissions",
            args.wal_dir.display()
        )
    })?;
    let budget = match args.wal_budget {
        Budget::Bytes(b) => b,
        Budget::Auto => auto_budget(&args.wal_dir)?,
    };
    let wal_opts = WalOptions {
        segment_bytes: args.wal_segment_size.as_u64(),
        budget_bytes: budget,
        max_record_bytes: (args.max_payload.as_u64() as usize)
            .saturating_mul(2)
            .max(64 * 1024),
        ..WalOptions::default()
    };
    let (wal, report) = Wal::open(&args.wal_dir, wal_opts.clone())
        .with_context(|| format!("cannot open the WAL in {}", args.wal_dir.display()))?;
    info!(wal_dir = %args.wal_dir.display(), wal_id = %wal.id(), budget_bytes = budget, recovery = ?report, "WAL open");

    let pool = crate::db::pool(
        &args.db.database_url,
        args.db.database_ca.as_deref(),
        args.db_pool_size as usize,
    )?;
    info!(database = %redact_url(&args.db.database_url), "database pool ready (connects lazily)");

    // Writer: runs until the WAL is drained after shutdown, or until the deadline.
    let writer_stop_now = Shutdown::new();
    let probe_task = tokio::spawn(crate::health::probe::run(
        health.clone(),
        crate::health::probe::Targets {
            wal_dir: args.wal_dir.clone(),
            min_free_bytes: wal_opts.max_record_bytes as u64,
            pool: pool.clone(),
        },
    ));
    let writer = Writer::new(
        wal.clone(),
        pool,
        WriterOptions {
            batch_max_rows: args.batch_max_rows as usize,
            batch_linger: args.batch_linger,
            schema: SchemaOptions {
                chunk_interval: args.db.chunk_interval,
            },
            ..WriterOptions::default()
        },
        health.clone(),
    );
    let writer_task = tokio::spawn(writer.run(shutdown.clone(), writer_stop_now.clone()));

    let validation = Arc::new(validation_config(&args));
    let broker_opts = BrokerOptions {
        mqtt_listen: args.mqtt_listen.addr(),
        ws_listen: args.ws_listen.addr(),
        allow_anonymous: args.allow_anonymous,
        max_packet_size: (args.max_payload.as_u64() as u32).saturating_add(64 * 1024),
        mqtts_listen: args.mqtts_listen.addr(),
        wss_listen: args.wss_listen.addr(),
        handshake_timeout: args.handshake_timeout,
        max_connections: args.max_connections,
        security: crate::broker::SecurityOptions::from_args(&args)?,
    };
    let broker = Broker::start(&broker_opts, wal.clone(), validation, health.clone()).await?;
    health.set_broker_listening(true);
    if let Some(a) = broker.mqtt_addr {
        info!(addr = %a, "MQTT listening");
    }
    if let Some(a) = broker.ws_addr {
        info!(addr = %a, "MQTT over WebSocket listening");
    }
    if let Some(a) = broker.mqtts_addr {
        info!(addr = %a, "MQTT over TLS listening");
    }
    if let Some(a) = broker.wss_addr {
        info!(addr = %a, "MQTT over secure WebSocket listening");
    }

    let http_listener = http::bind(args.http_listen).await.with_context(|| {
        format!(
            "cannot listen for HTTP on {}: is the port free?",
            args.http_listen
        )
    })?;
    info!(addr = %http_listener.local_addr()?, "HTTP listening (/healthz /readyz /metrics)");
    let http_shutdown = Shutdown::new();
    let http_task = tokio::spawn(http::serve(
        http_listener,
        HttpState {
            health: health.clone(),
            metrics,
        },
        http_shutdown.clone(),
    ));

    let gauges_task = tokio::spawn(export_gauges(
        wal.clone(),
        health.clone(),
        broker.scx.clone(),
    ));

    shutdown.wait().await;
    let started = std::time::Instant::now();
    info!(deadline = ?args.shutdown_deadline, "draining");
    health.set_draining();
    broker.stop_accepting();
    if let Err(e) = wal.close().await {
        warn!(error = %e, "closing the WAL reported an error");
    }
    // Leave a little time at the end for the process to exit cleanly.
    let flush_budget = args
        .shutdown_deadline
        .saturating_sub(Duration::from_millis(500));
    let mut writer_task = writer_task;
    if tokio::time::timeout(
        flush_budget.saturating_sub(started.elapsed()),
        &mut writer_task,
    )
    .await
    .is_err()
    {
        writer_stop_now.trigger();
        let _ = tokio::time::timeout(Duration::from_millis(300), &mut writer_task).await;
    }
    let left = wal.stats();
    info!(
        unwritten_records = left.unreleased_records,
        elapsed = ?started.elapsed(),
        "drained; what is not in the database stays in the WAL for the next start"
    );
    http_shutdown.trigger();
    gauges_task.abort();
    probe_task.abort();
    let _ = http_task.await;
    Ok(())
}

/// Default budget: a quarter of the WAL volume's size.
fn auto_budget(dir: &Path) -> anyhow::Result<u64> {
    let st = nix::sys::statvfs::statvfs(dir)
        .with_context(|| format!("cannot stat the WAL volume at {}", dir.display()))?;
    let size = st.blocks() as u64 * st.fragment_size() as u64;
    Ok((size / 4).max(64 * 1024 * 1024))
}

fn validation_config(args: &RunArgs) -> ValidationConfig {
    ValidationConfig {
        max_future: args.max_future,
        max_past: args.max_past,
        max_payload_bytes: args.max_payload.as_u64() as usize,
        ..ValidationConfig::default()
    }
}

/// Publishes the WAL and connection gauges once a second.
async fn export_gauges(wal: Wal, health: Arc<Health>, scx: rmqtt::context::ServerContext) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut quarantined_seen = 0;
    loop {
        tick.tick().await;
        let s = wal.stats();
        metrics::gauge!(m::WAL_BYTES).set(s.disk_bytes as f64);
        metrics::gauge!(m::WAL_BACKLOG_BYTES).set(s.unreleased_bytes as f64);
        metrics::gauge!(m::WAL_BACKLOG_RECORDS).set(s.unreleased_records as f64);
        let age = s
            .oldest_unreleased_appended_at
            .and_then(|t| SystemTime::now().duration_since(t).ok())
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        metrics::gauge!(m::WAL_BACKLOG_AGE).set(age);
        if s.quarantined > quarantined_seen {
            metrics::counter!(m::WAL_QUARANTINED).increment(s.quarantined - quarantined_seen);
            quarantined_seen = s.quarantined;
        }
        health.set_wal_over_budget(s.unreleased_bytes >= s.budget_bytes);
        let since = health
            .last_commit_ms()
            .map(|t| (crate::health::now_ms() - t).max(0) as f64 / 1000.0)
            .unwrap_or(-1.0);
        metrics::gauge!(m::DB_SINCE_COMMIT).set(since);
        metrics::gauge!(m::CONNECTED_CLIENTS).set(scx.connections.count() as f64);
    }
}
