//! The demo (the README's main command): the local TimescaleDB, the ingest service and a
//! simulated fleet on this machine, with live progress once a second: positions acknowledged
//! and committed, in total and per second, and the WAL backlog. Ctrl-C stops it cleanly.
//!
//! Options (environment): DEMO_DEVICES (default 1000), DEMO_RATE (points/s per device, 1),
//! DEMO_SECONDS (0 = until Ctrl-C), DEMO_POINTS_PER_MESSAGE (1).

use std::time::{Duration, Instant};

use accoreboot_edge::harness::{Ingest, IngestOptions};
use anyhow::{bail, Context};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> anyhow::Result<T> {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .map_err(|_| anyhow::anyhow!("{name}={v} is not a valid number")),
        Err(_) => Ok(default),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let devices: usize = env_or("DEMO_DEVICES", 1000)?;
    let rate: f64 = env_or("DEMO_RATE", 1.0)?;
    let seconds: u64 = env_or("DEMO_SECONDS", 0)?;
    let per_message: usize = env_or("DEMO_POINTS_PER_MESSAGE", 1)?;
    if devices == 0 || rate <= 0.0 {
        bail!("DEMO_DEVICES and DEMO_RATE must be positive");
    }

    let root = std::env::current_dir()?;
    println!("starting the local TimescaleDB (scripts/local-db start)…");
    let out = std::process::Command::new(root.join("scripts/local-db"))
        .arg("start")
        .output()
        .context("running scripts/local-db: run the demo from the repository root")?;
    if !out.status.success() {
        bail!(
            "scripts/local-db start failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let database_url = String::from_utf8_lossy(&out.stdout).trim().to_string();

    let work = root.join(".local/demo");
    std::fs::create_dir_all(&work)?;
    let ingest = Ingest::start(IngestOptions {
        database_url: database_url.clone(),
        wal_dir: work.join("wal"),
        args: vec![],
        allow_anonymous: true,
    })?;
    ingest.wait_ready(Duration::from_secs(60))?;
    println!(
        "ingest is up: MQTT 127.0.0.1:{}, metrics http://127.0.0.1:{}/metrics, log {}",
        ingest.mqtt_port,
        ingest.http_port,
        ingest.log_path.display()
    );

    let mut cfg = fleet::FleetConfig::new("127.0.0.1", ingest.mqtt_port);
    cfg.devices = devices;
    cfg.rate_per_device = rate;
    cfg.points_per_message = per_message;
    cfg.prefix = "demo-".into();
    cfg.ramp_up = Duration::from_secs(2);
    let fleet = fleet::Fleet::start(cfg).context("starting the simulated fleet")?;
    println!("{devices} simulated trackers publishing {rate} point(s)/s each; Ctrl-C to stop\n");
    println!(
        "{:>6} {:>9} {:>12} {:>10} {:>12} {:>10} {:>12}",
        "time", "connected", "acked", "acked/s", "committed", "commit/s", "wal backlog"
    );

    let started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let (mut last_acked, mut last_committed) = (0u64, 0u64);
    let stats = fleet.stats();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = tokio::signal::ctrl_c() => break,
        }
        if seconds > 0 && started.elapsed() >= Duration::from_secs(seconds) {
            break;
        }
        let acked = stats.acked_points();
        let committed = ingest.metric("ingest_db_rows_total{table=\"positions\"}") as u64;
        let backlog = ingest.metric("ingest_wal_backlog_records");
        println!(
            "{:>5}s {:>9} {:>12} {:>10} {:>12} {:>10} {:>12}",
            started.elapsed().as_secs(),
            stats.connected(),
            acked,
            acked.saturating_sub(last_acked),
            committed,
            committed.saturating_sub(last_committed),
            backlog
        );
        last_acked = acked;
        last_committed = committed;
    }
    println!("\nstopping the fleet (waiting for outstanding acknowledgements)…");
    let report = fleet.stop(Duration::from_secs(10)).await;
    println!(
        "acknowledged {} positions ({} unacknowledged), PUBACK p50 {:.1} ms, p99 {:.1} ms",
        report.acked.len(),
        report.unacked.len(),
        report.latency_p50_ms,
        report.latency_p99_ms
    );
    println!(
        "the positions are in table `positions` of {}",
        database_url.rsplit('@').next().unwrap_or("")
    );
    Ok(())
}
