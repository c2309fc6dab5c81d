//! End-to-end throughput (`cargo bench --bench e2e`): a simulated fleet publishes QoS 1 to the
//! real ingest process, which writes to the local TimescaleDB. Prints, in one run:
//! - positions/s acknowledged and committed, sustained over the measuring window;
//! - PUBACK latency p50 / p99 at a fixed moderate rate (5,000 positions/s by default);
//! - the ingest process's peak RSS and CPU;
//! - the database's own limit: binary COPY of the same rows straight into the same
//!   hypertable, and the ratio end-to-end / database-only.
//!
//! Needs the local database (`scripts/local-db start`). Settings (environment):
//! BENCH_DEVICES (1000), BENCH_SECONDS (30), BENCH_POINTS_PER_MESSAGE (10),
//! BENCH_LATENCY_RATE (5000).

use std::time::{Duration, Instant};

use accoreboot_edge::harness::{env_or, Ingest, IngestOptions, TestDb};
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};

/// Peak resident memory (kB) and total CPU seconds of a process, from /proc.
fn proc_usage(pid: u32) -> (u64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let hwm = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks: f64 = fields
        .get(11)
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0)
        + fields
            .get(12)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0);
    (hwm, ticks / 100.0)
}

async fn rows_in(db: &TestDb) -> i64 {
    let c = db.client().await.unwrap();
    c.query_one("SELECT count(*) FROM positions", &[])
        .await
        .map(|r| r.get(0))
        .unwrap_or(0)
}

struct Run {
    acked_per_s: f64,
    committed_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    rss_mb: f64,
    cpu_percent: f64,
    acked: usize,
}

async fn fleet_run(devices: usize, rate_per_device: f64, per_message: usize, seconds: u64) -> Run {
    let db = TestDb::create()
        .await
        .expect("local database: run scripts/local-db start");
    let dir = tempfile::tempdir().unwrap();
    let ingest = Ingest::start(IngestOptions {
        database_url: db.url.clone(),
        wal_dir: dir.path().join("wal"),
        args: vec!["--wal-budget".into(), "4GiB".into()],
        allow_anonymous: true,
    })
    .unwrap();
    ingest.wait_ready(Duration::from_secs(60)).unwrap();
    let pid = ingest.pid().unwrap();
    let mut cfg = fleet::FleetConfig::new("127.0.0.1", ingest.mqtt_port);
    cfg.devices = devices;
    cfg.rate_per_device = rate_per_device;
    cfg.points_per_message = per_message;
    cfg.max_inflight = 20;
    cfg.ramp_up = Duration::from_secs(2);
    cfg.prefix = "bench-".into();
    let fleet = fleet::Fleet::start(cfg).unwrap();
    let stats = fleet.stats();
    // Warm up, then measure a window.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (a0, c0, (_, cpu0), t0) = (
        stats.acked_points(),
        rows_in(&db).await,
        proc_usage(pid),
        Instant::now(),
    );
    stats.take_interval_latency();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let (a1, c1, (rss, cpu1), el) = (
        stats.acked_points(),
        rows_in(&db).await,
        proc_usage(pid),
        t0.elapsed().as_secs_f64(),
    );
    let lat = stats.take_interval_latency();
    let report = fleet.stop(Duration::from_secs(10)).await;
    drop(ingest);
    let _ = db.drop_now().await;
    Run {
        acked_per_s: (a1 - a0) as f64 / el,
        committed_per_s: (c1 - c0) as f64 / el,
        p50_ms: lat.p50_ms,
        p99_ms: lat.p99_ms,
        rss_mb: rss as f64 / 1024.0,
        cpu_percent: (cpu1 - cpu0) / el * 100.0,
        acked: report.acked.len(),
    }
}

/// Binary COPY of `n` fleet-like rows straight into the hypertable, in 20,000-row batches.
async fn database_only(n: usize) -> f64 {
    let db = TestDb::create().await.unwrap();
    let mut client = db.client().await.unwrap();
    let mut schema_client = client;
    ingest::schema::migrate(
        &mut schema_client,
        &ingest::schema::SchemaOptions::default(),
    )
    .await
    .unwrap();
    client = schema_client;
    let types = [
        Type::TEXT,
        Type::TIMESTAMPTZ,
        Type::FLOAT8,
        Type::FLOAT8,
        Type::FLOAT8,
        Type::FLOAT8,
        Type::FLOAT8,
        Type::FLOAT8,
        Type::INT2,
        Type::FLOAT8,
        Type::JSONB,
        Type::TIMESTAMPTZ,
    ];
    let now = chrono::Utc::now();
    let started = Instant::now();
    let batch = 20_000;
    for b in 0..n.div_ceil(batch) {
        let tx = client.transaction().await.unwrap();
        let sink = tx
            .copy_in("COPY positions (device_id, time, lat, lon, alt, speed, heading, accuracy, satellites, battery, attributes, received_at) FROM STDIN (FORMAT binary)")
            .await
            .unwrap();
        let w = BinaryCopyInWriter::new(sink, &types);
        futures_util::pin_mut!(w);
        for i in 0..batch.min(n - b * batch) {
            let k = b * batch + i;
            let device = format!("bench-{:06}", k % 1000);
            let t = now - chrono::Duration::milliseconds((n - k) as i64);
            let (lat, lon) = (48.85 + (k % 100) as f64 * 1e-4, 2.35);
            let (alt, speed, heading, acc, bat) = (
                Some(35.0f64),
                Some(12.0f64),
                Some(90.0f64),
                Some(5.0f64),
                Some(80.0f64),
            );
            let sats = Some(9i16);
            let attrs: Option<serde_json::Value> = None;
            let row: [&(dyn ToSql + Sync); 12] = [
                &device, &t, &lat, &lon, &alt, &speed, &heading, &acc, &sats, &bat, &attrs, &now,
            ];
            w.as_mut().write(&row).await.unwrap();
        }
        w.finish().await.unwrap();
        tx.commit().await.unwrap();
    }
    let rate = n as f64 / started.elapsed().as_secs_f64();
    let _ = db.drop_now().await;
    rate
}

#[tokio::main]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("e2e: bench");
        return;
    }
    let devices: usize = env_or("BENCH_DEVICES", 1000);
    let seconds: u64 = env_or("BENCH_SECONDS", 30);
    let per_message: usize = env_or("BENCH_POINTS_PER_MESSAGE", 10);
    let latency_rate: f64 = env_or("BENCH_LATENCY_RATE", 5000.0);
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    println!("machine: {cpus} CPUs; fleet, ingest and database on the same machine");

    // 1. Throughput: every tracker publishes as fast as its acknowledgements allow.
    let max = fleet_run(devices, 1000.0, per_message, seconds).await;
    println!(
        "throughput: {devices} trackers, {per_message} points/message, {seconds} s window: \
         acknowledged {:.0} positions/s, committed {:.0} positions/s; ingest peak RSS {:.0} MB, CPU {:.0}% of one core",
        max.acked_per_s, max.committed_per_s, max.rss_mb, max.cpu_percent
    );

    // 2. Latency at a moderate fixed rate, one point per message.
    let lat = fleet_run(devices, latency_rate / devices as f64, 1, seconds.min(20)).await;
    println!(
        "latency at {latency_rate:.0} positions/s ({devices} trackers, 1 point/message): PUBACK p50 {:.2} ms, p99 {:.2} ms; \
         acknowledged {:.0}/s; ingest peak RSS {:.0} MB",
        lat.p50_ms, lat.p99_ms, lat.acked_per_s, lat.rss_mb
    );

    // 3. The database's own limit, with the same rows and the same hypertable.
    let n = max.acked.clamp(200_000, 2_000_000);
    let db_rate = database_only(n).await;
    println!("database only: binary COPY of {n} rows into the hypertable: {db_rate:.0} rows/s");
    println!(
        "ratio end-to-end committed / database-only: {:.2}",
        max.committed_per_s / db_rate
    );
}
