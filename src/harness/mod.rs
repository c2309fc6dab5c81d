//! Test and bench harness: real database, real ingest process.

mod db;
mod ingest;
pub mod mqtt_wire;
pub mod verify;

pub use db::{database_url, OwnServer, TestDb};
pub use ingest::{free_port, ingest_binary, Ingest, IngestOptions};

/// Anonymous trackers for the durability tests: `devices` of them named `{prefix}{index}`,
/// `rate` positions/s each, reconnecting quickly (50 ms doubling to 500 ms) after a lost
/// connection.
pub fn quick_fleet(port: u16, prefix: &str, devices: usize, rate: f64) -> fleet::FleetConfig {
    let mut cfg = fleet::FleetConfig::new("127.0.0.1", port);
    cfg.devices = devices;
    cfg.rate_per_device = rate;
    cfg.prefix = prefix.into();
    cfg.reconnect_min = std::time::Duration::from_millis(50);
    cfg.reconnect_max = std::time::Duration::from_millis(500);
    cfg
}

/// Polls `f` every 50 ms until it holds or `timeout` passes; how long it took when it held.
pub async fn wait_until(
    timeout: std::time::Duration,
    mut f: impl FnMut() -> bool,
) -> Option<std::time::Duration> {
    let started = std::time::Instant::now();
    while started.elapsed() < timeout {
        if f() {
            return Some(started.elapsed());
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    None
}

/// A bench or demo setting from the environment, or its default when unset or unparsable.
pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
