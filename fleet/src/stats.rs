//! Live counters of a running fleet, shared by every device task: plain atomics plus a
//! publish-to-PUBACK latency histogram (cumulative and since the last progress line).

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::Duration;

use hdrhistogram::Histogram;

/// Highest latency the histogram tracks exactly (larger values are clamped), in µs.
const MAX_LATENCY_US: u64 = 600_000_000;

/// Counters of a fleet; read them any time with [`FleetStats::snapshot`].
#[derive(Debug)]
pub struct FleetStats {
    devices: usize,
    connected: AtomicI64,
    generated: AtomicU64,
    published_messages: AtomicU64,
    published_points: AtomicU64,
    acked_messages: AtomicU64,
    acked_points: AtomicU64,
    resent_points: AtomicU64,
    connects: AtomicU64,
    reconnects: AtomicU64,
    errors: AtomicU64,
    last_error: Mutex<Option<String>>,
    latency: Mutex<Latencies>,
}

#[derive(Debug)]
struct Latencies {
    total: Histogram<u64>,
    interval: Histogram<u64>,
}

/// A consistent-enough copy of the counters (each read atomically, not all at one instant).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StatsSnapshot {
    /// Devices in the fleet.
    pub devices: usize,
    /// Devices with a live MQTT connection (CONNACK received).
    pub connected: u64,
    /// Points generated.
    pub generated: u64,
    /// PUBLISH messages handed to the client, resends included.
    pub published_messages: u64,
    /// Points in those messages, resends included.
    pub published_points: u64,
    /// PUBACKs matched to a message.
    pub acked_messages: u64,
    /// Points acknowledged (each point once).
    pub acked_points: u64,
    /// Points put back for resending after a lost connection.
    pub resent_points: u64,
    /// Successful connections (CONNACK), first ones included.
    pub connects: u64,
    /// Successful connections after a lost one.
    pub reconnects: u64,
    /// Failed connects, lost connections and bookkeeping errors.
    pub errors: u64,
}

/// Publish-to-PUBACK latency percentiles in milliseconds (0 when nothing was acknowledged).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LatencySummary {
    pub count: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

fn new_histogram() -> Histogram<u64> {
    #[allow(clippy::expect_used)]
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3)
        .expect("constant histogram bounds (1 µs .. 600 s, 3 digits) are valid")
}

fn summarize(h: &Histogram<u64>) -> LatencySummary {
    if h.is_empty() {
        return LatencySummary::default();
    }
    let ms = |us: u64| us as f64 / 1000.0;
    LatencySummary {
        count: h.len(),
        p50_ms: ms(h.value_at_quantile(0.50)),
        p90_ms: ms(h.value_at_quantile(0.90)),
        p99_ms: ms(h.value_at_quantile(0.99)),
        p999_ms: ms(h.value_at_quantile(0.999)),
        max_ms: ms(h.max()),
    }
}

impl FleetStats {
    pub(crate) fn new(devices: usize) -> Self {
        FleetStats {
            devices,
            connected: AtomicI64::new(0),
            generated: AtomicU64::new(0),
            published_messages: AtomicU64::new(0),
            published_points: AtomicU64::new(0),
            acked_messages: AtomicU64::new(0),
            acked_points: AtomicU64::new(0),
            resent_points: AtomicU64::new(0),
            connects: AtomicU64::new(0),
            reconnects: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            last_error: Mutex::new(None),
            latency: Mutex::new(Latencies {
                total: new_histogram(),
                interval: new_histogram(),
            }),
        }
    }

    /// Copies every counter.
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            devices: self.devices,
            connected: self.connected.load(Relaxed).max(0) as u64,
            generated: self.generated.load(Relaxed),
            published_messages: self.published_messages.load(Relaxed),
            published_points: self.published_points.load(Relaxed),
            acked_messages: self.acked_messages.load(Relaxed),
            acked_points: self.acked_points.load(Relaxed),
            resent_points: self.resent_points.load(Relaxed),
            connects: self.connects.load(Relaxed),
            reconnects: self.reconnects.load(Relaxed),
            errors: self.errors.load(Relaxed),
        }
    }

    /// Devices connected right now.
    pub fn connected(&self) -> u64 {
        self.connected.load(Relaxed).max(0) as u64
    }

    /// Points acknowledged so far.
    pub fn acked_points(&self) -> u64 {
        self.acked_points.load(Relaxed)
    }

    /// The most recent connection error (never contains credentials).
    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().ok().and_then(|g| g.clone())
    }

    /// Latency since the fleet started.
    pub fn latency(&self) -> LatencySummary {
        match self.latency.lock() {
            Ok(l) => summarize(&l.total),
            Err(_) => LatencySummary::default(),
        }
    }

    /// Latency since the previous call of this method (for a live progress line).
    pub fn take_interval_latency(&self) -> LatencySummary {
        match self.latency.lock() {
            Ok(mut l) => {
                let s = summarize(&l.interval);
                l.interval.reset();
                s
            }
            Err(_) => LatencySummary::default(),
        }
    }

    pub(crate) fn on_generated(&self, n: u64) {
        self.generated.fetch_add(n, Relaxed);
    }

    pub(crate) fn on_published(&self, points: usize) {
        self.published_messages.fetch_add(1, Relaxed);
        self.published_points.fetch_add(points as u64, Relaxed);
    }

    pub(crate) fn on_acked(&self, points: usize, latency: Duration) {
        self.acked_messages.fetch_add(1, Relaxed);
        self.acked_points.fetch_add(points as u64, Relaxed);
        let us = (latency.as_micros() as u64).clamp(1, MAX_LATENCY_US);
        if let Ok(mut l) = self.latency.lock() {
            // Values are clamped into the histogram's range, so recording cannot fail.
            let _ = l.total.record(us);
            let _ = l.interval.record(us);
        }
    }

    pub(crate) fn on_connected(&self, first: bool) {
        self.connected.fetch_add(1, Relaxed);
        self.connects.fetch_add(1, Relaxed);
        if !first {
            self.reconnects.fetch_add(1, Relaxed);
        }
    }

    pub(crate) fn on_disconnected(&self, resent_points: usize) {
        self.connected.fetch_sub(1, Relaxed);
        self.resent_points.fetch_add(resent_points as u64, Relaxed);
    }

    pub(crate) fn on_error(&self, what: String) {
        self.errors.fetch_add(1, Relaxed);
        if let Ok(mut g) = self.last_error.lock() {
            *g = Some(what);
        }
    }
}
