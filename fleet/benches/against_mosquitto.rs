//! End-to-end fleet throughput against a real mosquitto on 127.0.0.1, and what it costs the
//! fleet: CPU time of this process per acknowledged point, next to the broker's CPU.
//! The question it answers: can the fleet drive 50,000 positions/s on a 2-core machine
//! without being the bottleneck?
//!
//! `cargo bench -p fleet --bench against_mosquitto` (needs `apt-get install mosquitto`).
//! `FLEET_BENCH_SECS` sets the run time of each scenario (default 10).

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::Mosquitto;
use fleet::{Fleet, FleetConfig};

/// Linux reports process CPU in clock ticks of 1/100 s (USER_HZ is fixed at 100 for user space).
const TICKS_PER_SEC: f64 = 100.0;

/// user + system CPU seconds of process `pid` (or this process), from /proc.
fn cpu_seconds(pid: Option<u32>) -> f64 {
    let path = match pid {
        Some(p) => format!("/proc/{p}/stat"),
        None => "/proc/self/stat".to_string(),
    };
    let stat = std::fs::read_to_string(&path).unwrap_or_default();
    // Fields after the command name (which is in parentheses and may contain spaces).
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state); utime is field 14, stime field 15.
    let utime: f64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    let stime: f64 = f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    (utime + stime) / TICKS_PER_SEC
}

struct Scenario {
    name: &'static str,
    devices: usize,
    rate: f64,
    points_per_message: usize,
}

async fn run(s: &Scenario, secs: u64) {
    let broker = Mosquitto::start();
    let broker_pid = broker.pid();
    let mut cfg = FleetConfig::new("127.0.0.1", broker.port);
    cfg.devices = s.devices;
    cfg.rate_per_device = s.rate;
    cfg.points_per_message = s.points_per_message;
    // At most ~2,000 new connections per second, so the broker's accept queue keeps up.
    let ramp_up = Duration::from_secs_f64((s.devices as f64 / 2000.0).max(1.0));
    cfg.ramp_up = ramp_up;
    let fleet = Fleet::start(cfg).expect("valid scenario");
    let stats = fleet.stats();
    // Warm-up: ramp-up plus two seconds.
    tokio::time::sleep(ramp_up + Duration::from_secs(2)).await;
    let _ = stats.take_interval_latency();
    let (c0, b0, a0, t0) = (
        cpu_seconds(None),
        cpu_seconds(broker_pid),
        stats.acked_points(),
        Instant::now(),
    );
    let m0 = stats.snapshot().acked_messages;
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let (c1, b1, a1, wall) = (
        cpu_seconds(None),
        cpu_seconds(broker_pid),
        stats.acked_points(),
        t0.elapsed().as_secs_f64(),
    );
    let m1 = stats.snapshot().acked_messages;
    let lat = stats.take_interval_latency();
    let connected = stats.connected();
    let report = fleet.stop(Duration::from_secs(10)).await;
    let points = (a1 - a0) as f64;
    let target = s.devices as f64 * s.rate;
    println!(
        "{:<28} target {:>6.0}/s  acked {:>6.0} points/s ({:>6.0} msg/s)  fleet CPU {:>5.2} cores = {:>5.1} µs/point  broker CPU {:>4.2} cores  p50 {:>6.1} ms p99 {:>7.1} ms  connected {}/{}  unacked at end {}",
        s.name,
        target,
        points / wall,
        (m1 - m0) as f64 / wall,
        (c1 - c0) / wall,
        (c1 - c0) * 1e6 / points.max(1.0),
        (b1 - b0) / wall,
        lat.p50_ms,
        lat.p99_ms,
        connected,
        s.devices,
        report.unacked.len(),
    );
}

fn main() {
    // `cargo bench` passes --bench; under `cargo test --all-targets` this would otherwise
    // run a minute of load on a shared machine.
    if !std::env::args().any(|a| a == "--bench") {
        println!("against_mosquitto: skipped (run it with `cargo bench -p fleet`)");
        return;
    }
    let secs: u64 = std::env::var("FLEET_BENCH_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let scenarios = [
        Scenario {
            name: "1000 dev x 10/s, 1 pt/msg",
            devices: 1000,
            rate: 10.0,
            points_per_message: 1,
        },
        Scenario {
            name: "1000 dev x 50/s, 1 pt/msg",
            devices: 1000,
            rate: 50.0,
            points_per_message: 1,
        },
        Scenario {
            name: "1000 dev x 50/s, 10 pt/msg",
            devices: 1000,
            rate: 50.0,
            points_per_message: 10,
        },
        Scenario {
            name: "10000 dev x 5/s, 1 pt/msg",
            devices: 10_000,
            rate: 5.0,
            points_per_message: 1,
        },
    ];
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    println!(
        "fleet against mosquitto, {secs} s per scenario, {} cores",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );
    for s in &scenarios {
        rt.block_on(run(s, secs));
    }
}
