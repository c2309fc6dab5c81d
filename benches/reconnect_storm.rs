//! Reconnect storm after a crash (`cargo bench --bench reconnect_storm`): N trackers, each with
//! its own generated secret, connected to the release ingest and publishing (QoS 1); the ingest
//! is killed (SIGKILL) and restarted on the same ports; every tracker reconnects with its
//! jittered exponential backoff (1 s doubling to 10 s, as tracker firmwares do) and resends
//! what was not acknowledged. Measured from the restart:
//! - time until every tracker is connected again, and the logins per second that makes;
//! - time until every point generated until then (unacknowledged at the kill, or buffered by
//!   the trackers while they were out) is acknowledged;
//! - refusals by reason (`ingest_mqtt_auth_total`) and failed connects seen by the trackers.
//!
//! Played twice in one run: with the default connection-rate limit, then with the limit off.
//! Needs the local database (`scripts/local-db start`). Settings: BENCH_RESTART_DEVICES (5000,
//! bounded by the open-files limit: the ingest holds three descriptors per tracker),
//! BENCH_RESTART_RATE (points/s per tracker, 0.2).

use std::time::{Duration, Instant};

use accoreboot_edge::harness::{env_or, wait_until, Ingest, IngestOptions, TestDb};
use ingest::auth::{Kind, Registry};

fn outcomes(ingest: &Ingest) -> String {
    let (_, body) = ingest.http_get("/metrics").unwrap_or((0, String::new()));
    body.lines()
        .filter(|l| l.starts_with("ingest_mqtt_auth_total{"))
        .map(|l| l.trim_start_matches("ingest_mqtt_auth_total"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn raise_open_files_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        if soft < hard {
            let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
        }
    }
}

#[tokio::main]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("reconnect_storm: bench");
        return;
    }
    raise_open_files_limit();
    let devices: usize = env_or("BENCH_RESTART_DEVICES", 5000);
    let rate: f64 = env_or("BENCH_RESTART_RATE", 0.2);
    let db = TestDb::create().await.expect("test database");
    let dir = tempfile::tempdir().expect("temp dir");
    let mut ingest = Ingest::start(IngestOptions {
        database_url: db.url.clone(),
        wal_dir: dir.path().join("wal"),
        args: vec![],
        allow_anonymous: false,
    })
    .expect("ingest starts");
    ingest
        .wait_ready(Duration::from_secs(60))
        .expect("ingest ready");
    let registry = Registry::new(ingest::db::pool(&db.url, None, 4).expect("pool"));
    let mut secrets = std::collections::HashMap::new();
    let made = Instant::now();
    for i in 0..devices {
        let id = format!("storm-{i:06}");
        let secret = registry.add(&id, Kind::Device).await.expect("account");
        secrets.insert(id, secret);
    }
    let secrets = std::sync::Arc::new(secrets);
    println!(
        "machine: {} CPUs; trackers, ingest and database on the same machine",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );
    println!(
        "{devices} trackers, each with its own generated secret ({:.1} s to register), {rate} points/s each, QoS 1",
        made.elapsed().as_secs_f64()
    );

    for (label, limit) in [
        ("default rate limit (1000/s)", None),
        ("rate limit off", Some("0")),
    ] {
        // Start this round's ingest (the same WAL and ports) with its limit.
        ingest.opts.args = match limit {
            Some(l) => vec!["--max-connection-rate".into(), l.into()],
            None => vec![],
        };
        ingest.restart().expect("restart");
        ingest.wait_ready(Duration::from_secs(60)).expect("ready");
        let mut cfg = fleet::FleetConfig::new("127.0.0.1", ingest.mqtt_port);
        cfg.devices = devices;
        cfg.rate_per_device = rate;
        cfg.prefix = "storm-".into();
        cfg.ramp_up = Duration::from_secs(10);
        cfg.connect_timeout = Duration::from_secs(10);
        cfg.reconnect_min = Duration::from_secs(1);
        cfg.reconnect_max = Duration::from_secs(10);
        let s = secrets.clone();
        cfg.credentials = fleet::Credentials::PerDevice(std::sync::Arc::new(move |id: &str| {
            (id.to_owned(), s.get(id).cloned().unwrap_or_default())
        }));
        let fleet = fleet::Fleet::start(cfg).expect("fleet");
        let stats = fleet.stats();
        let all_in = wait_until(Duration::from_secs(120), || {
            stats.connected() as usize == devices
        })
        .await;
        if all_in.is_none() {
            println!(
                "[{label}] only {} of {devices} connected before the crash; skipped",
                stats.connected()
            );
            fleet.stop(Duration::from_secs(5)).await;
            continue;
        }
        tokio::time::sleep(Duration::from_secs(5)).await;

        // The crash and the restart.
        let at_kill = stats.snapshot();
        let generated_at_kill = at_kill.generated;
        let unacked_at_kill = at_kill.generated.saturating_sub(at_kill.acked_points);
        let errors_before = stats.snapshot().errors;
        let killed = Instant::now();
        ingest.restart().expect("restart after the kill");
        let restarted = Instant::now();
        let back = wait_until(Duration::from_secs(300), || {
            stats.connected() as usize == devices
        })
        .await;
        // Every point generated until the last tracker was back (during the outage they were
        // buffered by the trackers) must then be acknowledged.
        let generated_when_back = stats.snapshot().generated.max(generated_at_kill);
        let acked = wait_until(Duration::from_secs(300), || {
            stats.acked_points() >= generated_when_back
        })
        .await
        .map(|_| restarted.elapsed());
        let snap = stats.snapshot();
        match back {
            Some(t) => println!(
                "[{label}] restart took {:.2} s; every tracker back in {:.2} s ({:.0} logins/s); every point generated until then ({} unacknowledged at the kill, {} more buffered while out) acknowledged {}",
                (restarted - killed).as_secs_f64(),
                t.as_secs_f64(),
                devices as f64 / t.as_secs_f64(),
                unacked_at_kill,
                generated_when_back - generated_at_kill,
                acked.map(|a| format!("{:.2} s after the restart", a.as_secs_f64())).unwrap_or_else(|| "not within 300 s".into())
            ),
            None => println!(
                "[{label}] only {} of {devices} trackers back within 300 s",
                stats.connected()
            ),
        }
        println!(
            "[{label}] logins by outcome after the restart: {}; limit refusals: {}; failed connects and lost connections seen by the trackers: {}",
            outcomes(&ingest),
            ingest.metric("ingest_mqtt_limit_refusals_total"),
            snap.errors - errors_before
        );
        let report = fleet.stop(Duration::from_secs(20)).await;
        println!(
            "[{label}] {} points acknowledged in all, {} unacknowledged at stop",
            report.acked.len(),
            report.unacked.len()
        );
    }
    drop(ingest);
    let _ = db.drop_now().await;
}
