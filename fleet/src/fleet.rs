//! The fleet handle: spawns one task per device, stops them, and gathers the report.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{error, info};

use crate::config::{ConfigError, FleetConfig};
use crate::device::{Device, DeviceOutcome, Phase};
use crate::report::{AckedPoint, FleetReport};
use crate::stats::FleetStats;

/// A running fleet of simulated trackers. Dropping it without [`Fleet::stop`] makes every
/// device finish at once (nothing is drained).
pub struct Fleet {
    cfg: Arc<FleetConfig>,
    stats: Arc<FleetStats>,
    control: watch::Sender<Phase>,
    tasks: Vec<(String, JoinHandle<DeviceOutcome>)>,
    started: Instant,
}

/// Why [`Fleet::wait_all_acked`] gave up.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WaitError {
    #[error("the fleet has no max_points, so there is no 'all' to wait for: set max_points")]
    Unbounded,
    #[error("timed out: {acked} of {expected} points acknowledged (is the broker up? last error: {last_error})")]
    TimedOut {
        acked: u64,
        expected: u64,
        last_error: String,
    },
}

impl Fleet {
    /// Validates `cfg` and starts every device (connects spread over `ramp_up`). Must be
    /// called inside a tokio runtime.
    pub fn start(cfg: FleetConfig) -> Result<Fleet, ConfigError> {
        cfg.validate()?;
        let rt = tokio::runtime::Handle::try_current().map_err(|_| ConfigError::NoRuntime)?;
        let cfg = Arc::new(cfg);
        let stats = Arc::new(FleetStats::new(cfg.devices));
        let (control, rx) = watch::channel(Phase::Running);
        let started = Instant::now();
        let mut tasks = Vec::with_capacity(cfg.devices);
        for i in 0..cfg.devices {
            let index = cfg.first_index + i;
            let start_at = started + cfg.ramp_up.mul_f64(i as f64 / cfg.devices as f64);
            let dev = Device::new(index, start_at, cfg.clone(), stats.clone(), rx.clone());
            tasks.push((cfg.device_id(index), rt.spawn(dev.run())));
        }
        info!(
            devices = cfg.devices,
            host = %cfg.host,
            port = cfg.port,
            rate = cfg.rate_per_device,
            "fleet started"
        );
        Ok(Fleet {
            cfg,
            stats,
            control,
            tasks,
            started,
        })
    }

    /// Live counters.
    pub fn stats(&self) -> Arc<FleetStats> {
        self.stats.clone()
    }

    /// The configuration the fleet runs with.
    pub fn config(&self) -> &FleetConfig {
        &self.cfg
    }

    /// Points the whole fleet will generate, if `max_points` is set.
    pub fn expected_points(&self) -> Option<u64> {
        self.cfg
            .max_points
            .map(|m| m.saturating_mul(self.cfg.devices as u64))
    }

    /// With `max_points` set: waits until every device generated all its points and all were
    /// acknowledged, or `timeout`.
    pub async fn wait_all_acked(&self, timeout: Duration) -> Result<(), WaitError> {
        let expected = self.expected_points().ok_or(WaitError::Unbounded)?;
        let deadline = Instant::now() + timeout;
        loop {
            let acked = self.stats.acked_points();
            if acked >= expected {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(WaitError::TimedOut {
                    acked,
                    expected,
                    last_error: self.stats.last_error().unwrap_or_else(|| "none".into()),
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops generating new points; keeps trying to get every buffered point acknowledged
    /// for up to `drain` (reconnecting if needed); then disconnects every device.
    pub async fn stop(self, drain: Duration) -> FleetReport {
        let deadline = Instant::now() + drain;
        // Fails only if every device task already ended, which is fine.
        let _ = self.control.send(Phase::Draining { deadline });
        let mut acked = Vec::new();
        let mut unacked = Vec::new();
        let mut failed_devices = Vec::new();
        for (id, task) in self.tasks {
            match task.await {
                Ok(out) => {
                    acked.extend(out.acked.into_iter().map(|time_ms| AckedPoint {
                        device_id: out.device_id.clone(),
                        time_ms,
                    }));
                    unacked.extend(out.unacked.into_iter().map(|time_ms| AckedPoint {
                        device_id: out.device_id.clone(),
                        time_ms,
                    }));
                }
                Err(e) => {
                    error!(device = %id, error = %e, "device task failed");
                    failed_devices.push(id);
                }
            }
        }
        let s = self.stats.snapshot();
        let latency = self.stats.latency();
        FleetReport {
            acked,
            unacked,
            generated: s.generated,
            published: s.published_messages,
            published_points: s.published_points,
            resent: s.resent_points,
            reconnects: s.reconnects,
            errors: s.errors,
            failed_devices,
            latency,
            latency_p50_ms: latency.p50_ms,
            latency_p99_ms: latency.p99_ms,
            elapsed: self.started.elapsed(),
            stats: s,
        }
    }
}
