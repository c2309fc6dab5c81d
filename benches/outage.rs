//! Outage benchmark (`cargo bench --bench outage`), in one run on one machine:
//! - PUBACK latency p50/p99 with the database up, then with it down (it should barely move:
//!   devices are acknowledged from the WAL, not from the database);
//! - catch-up: the backlog accumulated during the outage, written once the database is back,
//!   in positions/s.
//!
//! Uses a database server of its own (port 55450) that it stops and starts.
//! Settings: BENCH_DEVICES (200), BENCH_RATE (points/s per device, 25), BENCH_SECONDS (15).

use std::time::{Duration, Instant};

use accoreboot_edge::harness::{env_or, Ingest, IngestOptions, OwnServer, TestDb};

#[tokio::main]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("outage: bench");
        return;
    }
    let devices: usize = env_or("BENCH_DEVICES", 200);
    let rate: f64 = env_or("BENCH_RATE", 25.0);
    let seconds: u64 = env_or("BENCH_SECONDS", 15);
    let (server, admin) = OwnServer::start(55450).expect("own database server");
    let db = TestDb::create_on(&admin).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ingest = Ingest::start(IngestOptions {
        database_url: db.url.clone(),
        wal_dir: dir.path().join("wal"),
        args: vec!["--wal-budget".into(), "4GiB".into()],
        allow_anonymous: true,
    })
    .unwrap();
    ingest.wait_ready(Duration::from_secs(60)).unwrap();
    let mut cfg = fleet::FleetConfig::new("127.0.0.1", ingest.mqtt_port);
    cfg.devices = devices;
    cfg.rate_per_device = rate;
    cfg.prefix = "outage-".into();
    cfg.ramp_up = Duration::from_secs(1);
    let fleet = fleet::Fleet::start(cfg).unwrap();
    let stats = fleet.stats();
    tokio::time::sleep(Duration::from_secs(3)).await;

    stats.take_interval_latency();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let up = stats.take_interval_latency();

    server.stop().unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    stats.take_interval_latency();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let down = stats.take_interval_latency();
    let backlog = ingest.metric("ingest_wal_backlog_records");

    // Stop publishing so the catch-up measures the backlog alone.
    let report = fleet.stop(Duration::from_secs(5)).await;
    let c0 = ingest.metric("ingest_db_rows_total{table=\"positions\"}");
    server.restart().unwrap();
    let t = Instant::now();
    let deadline = t + Duration::from_secs(300);
    while ingest.metric("ingest_wal_backlog_records") > 0.0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let took = t.elapsed().as_secs_f64();
    let written = ingest.metric("ingest_db_rows_total{table=\"positions\"}") - c0;
    println!(
        "machine: {} CPUs; fleet, ingest and database on the same machine",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );
    println!(
        "load: {devices} trackers × {rate} points/s = {:.0} positions/s, 1 point/message",
        devices as f64 * rate
    );
    println!(
        "PUBACK with the database up:   p50 {:.2} ms, p99 {:.2} ms ({} samples)",
        up.p50_ms, up.p99_ms, up.count
    );
    println!(
        "PUBACK with the database down: p50 {:.2} ms, p99 {:.2} ms ({} samples)",
        down.p50_ms, down.p99_ms, down.count
    );
    println!(
        "p99 ratio down/up: {:.2}",
        down.p99_ms / up.p99_ms.max(1e-9)
    );
    println!(
        "catch-up: backlog of {backlog:.0} WAL records ({written:.0} positions) written in {took:.2} s (including reconnect): {:.0} positions/s",
        written / took.max(1e-9)
    );
    println!("acknowledged in total: {}", report.acked.len());
    drop(ingest);
    let _ = db.drop_now().await;
}
