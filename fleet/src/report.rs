//! What a finished fleet run leaves: every acknowledged and unacknowledged point, the
//! counters and latency percentiles, and the CSV form the deployer's reboot test reads.

use std::fmt;
use std::io::{self, Write};
use std::time::Duration;

use crate::stats::{LatencySummary, StatsSnapshot};

/// One position, identified as the database identifies it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AckedPoint {
    pub device_id: String,
    pub time_ms: i64,
}

/// The outcome of [`crate::Fleet::stop`].
#[derive(Debug, Clone)]
pub struct FleetReport {
    /// Every point whose PUBACK was received, once each, grouped by device in time order.
    pub acked: Vec<AckedPoint>,
    /// Every point generated and never acknowledged (the drain time ran out).
    pub unacked: Vec<AckedPoint>,
    /// Points generated.
    pub generated: u64,
    /// PUBLISH messages sent, resends included.
    pub published: u64,
    /// Points in those messages, resends included.
    pub published_points: u64,
    /// Points put back for resending after a lost connection.
    pub resent: u64,
    /// Successful connections after a lost one.
    pub reconnects: u64,
    /// Failed connects, lost connections and bookkeeping errors.
    pub errors: u64,
    /// Devices whose task died (a bug): their points are in neither list.
    pub failed_devices: Vec<String>,
    /// Publish-to-PUBACK latency over the whole run.
    pub latency: LatencySummary,
    pub latency_p50_ms: f64,
    pub latency_p99_ms: f64,
    /// From `Fleet::start` to the end of `stop`.
    pub elapsed: Duration,
    /// The counters at the end.
    pub stats: StatsSnapshot,
}

impl FleetReport {
    /// Writes `device_id,time_ms` lines (with that header) for every acknowledged point.
    pub fn write_acked_csv(&self, mut out: impl Write) -> io::Result<()> {
        writeln!(out, "device_id,time_ms")?;
        for p in &self.acked {
            writeln!(out, "{},{}", p.device_id, p.time_ms)?;
        }
        out.flush()
    }

    /// Acknowledged points per second over the whole run.
    pub fn acked_per_second(&self) -> f64 {
        let s = self.elapsed.as_secs_f64();
        if s > 0.0 {
            self.acked.len() as f64 / s
        } else {
            0.0
        }
    }
}

impl fmt::Display for FleetReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} devices, {:.1}s: generated {} points, acked {} ({:.0}/s), unacked {}",
            self.stats.devices,
            self.elapsed.as_secs_f64(),
            self.generated,
            self.acked.len(),
            self.acked_per_second(),
            self.unacked.len()
        )?;
        writeln!(
            f,
            "published {} messages ({} points), resent {} points, reconnects {}, errors {}",
            self.published, self.published_points, self.resent, self.reconnects, self.errors
        )?;
        write!(
            f,
            "publish->PUBACK latency ms: p50 {:.2} p90 {:.2} p99 {:.2} p99.9 {:.2} max {:.2}",
            self.latency.p50_ms,
            self.latency.p90_ms,
            self.latency.p99_ms,
            self.latency.p999_ms,
            self.latency.max_ms
        )?;
        if !self.failed_devices.is_empty() {
            write!(f, "\n{} device tasks failed", self.failed_devices.len())?;
        }
        Ok(())
    }
}
