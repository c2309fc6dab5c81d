//! Soak benchmark (`cargo bench --bench soak`): the release ingest under a steady load for tens
//! of minutes with **nothing scraping `/metrics`** (as in production, where no Prometheus runs
//! by default). Prints the resident memory once a minute and the least-squares slope of RSS
//! over time: a service whose memory depends on being scraped grows in a straight line.
//!
//! Only `/readyz` and `/proc/<pid>/status` are read during the run; the metrics are read once,
//! at the end.
//! Settings: SOAK_MINUTES (30), SOAK_DEVICES (500), SOAK_RATE (points/s per device, 4).

use std::time::{Duration, Instant};

use accoreboot_edge::harness::{env_or, Ingest, IngestOptions, TestDb};

/// Resident set size of `pid`, in bytes.
fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Least-squares slope of `y` over `x`.
fn slope(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let num: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let den: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    if den == 0.0 {
        0.0
    } else {
        num / den
    }
}

#[tokio::main]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("soak: bench");
        return;
    }
    let minutes: u64 = env_or("SOAK_MINUTES", 30);
    let devices: usize = env_or("SOAK_DEVICES", 500);
    let rate: f64 = env_or("SOAK_RATE", 4.0);
    let db = TestDb::create().await.expect("test database");
    let dir = tempfile::tempdir().expect("temp dir");
    let ingest = Ingest::start(IngestOptions {
        database_url: db.url.clone(),
        wal_dir: dir.path().join("wal"),
        args: vec![],
        allow_anonymous: true,
    })
    .expect("ingest starts");
    ingest
        .wait_ready(Duration::from_secs(60))
        .expect("ingest ready");
    let pid = ingest.pid().expect("ingest pid");
    let mut cfg = fleet::FleetConfig::new("127.0.0.1", ingest.mqtt_port);
    cfg.devices = devices;
    cfg.rate_per_device = rate;
    cfg.prefix = "soak-".into();
    cfg.ramp_up = Duration::from_secs(5);
    let fleet = fleet::Fleet::start(cfg).expect("fleet starts");
    let stats = fleet.stats();
    println!(
        "machine: {} CPUs; fleet, ingest and database on the same machine",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );
    println!(
        "load: {devices} trackers × {rate} points/s = {:.0} positions/s, 1 point/message, {minutes} min, no scraper",
        devices as f64 * rate
    );
    println!("minute  RSS MB  acked positions");
    // The first minute is warm-up (connections, buffers, the first chunks): the slope starts
    // after it.
    let started = Instant::now();
    let mut samples = Vec::new();
    for minute in 0..=minutes {
        let at = started + Duration::from_secs(60 * minute);
        tokio::time::sleep_until(at.into()).await;
        let rss = rss_bytes(pid).unwrap_or(0);
        println!(
            "{minute:>6}  {:>6.1}  {}",
            rss as f64 / 1e6,
            stats.acked_points()
        );
        if minute >= 1 {
            samples.push((minute as f64, rss as f64 / 1e6));
        }
    }
    let acked = stats.acked_points();
    let report = fleet.stop(Duration::from_secs(10)).await;
    let per_minute = slope(&samples);
    let messages_per_minute = devices as f64 * rate * 60.0;
    println!(
        "RSS slope after the first minute: {per_minute:+.3} MB/min ({:+.2} bytes per message)",
        per_minute * 1e6 / messages_per_minute
    );
    println!(
        "acknowledged {acked} positions, {} left unacknowledged at stop, rows written {}",
        report.unacked.len(),
        ingest.metric("ingest_db_rows_total{table=\"positions\"}")
    );
    drop(ingest);
    let _ = db.drop_now().await;
}
