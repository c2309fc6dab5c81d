//! fleet: a load generator of simulated GPS trackers that are real MQTT clients.
//!
//! Each device is one tokio task with its own MQTT connection (rumqttc, QoS 1, clean
//! session). It generates positions on a schedule, keeps every point until the broker's
//! PUBACK for the message that carried it, and after a lost connection reconnects with a
//! capped backoff and resends what was not acknowledged. At the end, [`FleetReport`] lists
//! exactly which (device_id, time_ms) pairs were acknowledged, so a test can compare them
//! with the database.
//!
//! Module map (data flows top to bottom):
//! - [`config`]: [`FleetConfig`], [`Credentials`], validation ([`ConfigError`]).
//! - [`motion`]: the random walk that produces plausible positions.
//! - [`position`]: one fix and its JSON payload encoding.
//! - [`ledger`]: where each point of a device is (buffer, in flight, acknowledged).
//! - `backoff`: reconnect waits.
//! - `device`: the per-device task driving the MQTT connection.
//! - [`stats`]: live counters and latency histogram ([`FleetStats`]).
//! - [`fleet`]: the [`Fleet`] handle (start, wait, stop).
//! - [`report`]: [`FleetReport`] and [`AckedPoint`].
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use std::time::Duration;
//! let mut cfg = fleet::FleetConfig::new("127.0.0.1", 1883);
//! cfg.devices = 100;
//! cfg.rate_per_device = 1.0;
//! cfg.max_points = Some(10);
//! let f = fleet::Fleet::start(cfg)?;
//! f.wait_all_acked(Duration::from_secs(60)).await?;
//! let report = f.stop(Duration::from_secs(5)).await;
//! assert!(report.unacked.is_empty());
//! # Ok(()) }
//! ```

mod backoff;
pub mod config;
mod device;
pub mod fleet;
pub mod ledger;
pub mod motion;
pub mod position;
pub mod report;
pub mod stats;

pub use config::{ConfigError, Credentials, FleetConfig};
pub use fleet::{Fleet, WaitError};
pub use position::Position;
pub use report::{AckedPoint, FleetReport};
pub use stats::{FleetStats, LatencySummary, StatsSnapshot};
