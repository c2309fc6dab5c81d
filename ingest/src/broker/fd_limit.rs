//! The open-files limit and the descriptor budget. Each MQTT connection holds three
//! descriptors (the device's socket, and both ends of the gate's loopback hop). The soft limit
//! is raised to the hard one at start (as Go and systemd services commonly do), a limit too low
//! for `--max-connections` is reported, and a reserve is kept for what must never starve (WAL
//! segments, the writer's database connections, HTTP): the gate stops accepting new MQTT
//! connections while open descriptors are within the reserve of the limit.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use nix::sys::resource::{getrlimit, setrlimit, Resource};
use tracing::{info, warn};

use crate::health::Health;
use crate::metrics as m;

/// Descriptors one connection holds.
pub const PER_CONNECTION: u64 = 3;
/// Descriptors kept for the WAL, the database pool, HTTP and the rest.
const RESERVE: u64 = 256;

/// Raises the soft limit to the hard limit (both are logged); returns the soft limit now in
/// force.
pub fn raise(max_connections: usize) -> Option<u64> {
    let (soft, hard) = match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok(l) => l,
        Err(e) => {
            warn!(error = %e, "cannot read the open-files limit");
            return None;
        }
    };
    info!(soft, hard, "open-files limit at start");
    let soft = if soft < hard {
        match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => {
                info!(from = soft, to = hard, "open-files limit raised");
                hard
            }
            Err(e) => {
                warn!(error = %e, soft, hard, "cannot raise the open-files limit");
                soft
            }
        }
    } else {
        soft
    };
    let needed = (max_connections as u64)
        .saturating_mul(PER_CONNECTION)
        .saturating_add(RESERVE);
    if soft < needed {
        warn!(
            limit = soft,
            needed,
            max_connections,
            "the open-files limit allows fewer connections than --max-connections: raise \
             `ulimit -n` (compose: `ulimits: nofile`) or lower --max-connections"
        );
    }
    Some(soft)
}

/// Descriptors kept free for the WAL (active and read segments, the directory, the lock), the
/// writer's database connections, HTTP scrapes and certificate reloads under a soft limit of
/// `limit`: an eighth of it, at least 32 (what those need at once), at most [`RESERVE`].
pub fn reserve_for(limit: u64) -> u64 {
    (limit / 8).clamp(32, RESERVE)
}

/// How many descriptors are open now and whether a new connection fits, kept cheap for the
/// accept loop: the count of `/proc/self/fd` is sampled (see `watch`) and moved by
/// [`PER_CONNECTION`] for every connection the gate opened or closed since.
#[derive(Debug)]
pub struct FdBudget {
    /// The soft limit in force.
    limit: u64,
    /// Kept free: new connections wait once open descriptors reach `limit - reserve`.
    reserve: u64,
    /// Connections the gate holds now.
    gate_connections: AtomicI64,
    /// Open descriptors at the last sample (0 before the first one).
    sampled_open: AtomicU64,
    /// `gate_connections` when the sample was taken.
    sampled_connections: AtomicI64,
    /// Set while new connections wait (for a log line per pause and `/readyz`).
    paused: AtomicBool,
}

/// How often the open descriptors are counted while more than half of them are in use.
pub const SAMPLE_EVERY: Duration = Duration::from_millis(500);
/// How often below that.
pub const SAMPLE_EVERY_IDLE: Duration = Duration::from_secs(5);

impl FdBudget {
    /// The budget under `limit` (the soft limit in force) with the default reserve, from a
    /// first count of the open descriptors.
    pub fn new(limit: u64) -> Arc<FdBudget> {
        let b = Self::with_reserve(limit, reserve_for(limit));
        b.sample();
        b
    }

    /// A budget that has counted nothing yet.
    fn with_reserve(limit: u64, reserve: u64) -> Arc<FdBudget> {
        Arc::new(FdBudget {
            limit,
            reserve,
            gate_connections: AtomicI64::new(0),
            sampled_open: AtomicU64::new(0),
            sampled_connections: AtomicI64::new(0),
            paused: AtomicBool::new(false),
        })
    }

    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Open descriptors now, as estimated from the last sample.
    pub fn open_estimate(&self) -> u64 {
        let moved = self.gate_connections.load(Ordering::Relaxed)
            - self.sampled_connections.load(Ordering::Relaxed);
        let open = self.sampled_open.load(Ordering::Relaxed) as i64 + moved * PER_CONNECTION as i64;
        open.max(0) as u64
    }

    /// True when one more connection leaves the reserve untouched.
    pub fn has_room(&self) -> bool {
        self.open_estimate() + PER_CONNECTION <= self.limit.saturating_sub(self.reserve)
    }

    /// Counts the open descriptors now (reads `/proc/self/fd`: call it off the async workers).
    pub fn sample(&self) {
        let before = self.gate_connections.load(Ordering::Relaxed);
        let Some(open) = count_open() else {
            return;
        };
        self.sampled_open.store(open, Ordering::Relaxed);
        self.sampled_connections.store(before, Ordering::Relaxed);
    }

    /// A connection the gate holds until the guard drops.
    pub fn hold(self: &Arc<Self>) -> Held {
        self.gate_connections.fetch_add(1, Ordering::Relaxed);
        Held(self.clone())
    }

    /// Records whether new connections wait now; true when that changed.
    pub fn set_paused(&self, paused: bool) -> bool {
        self.paused.swap(paused, Ordering::Relaxed) != paused
    }

    /// Samples, exports the gauges and tells `/readyz` while the reserve is reached; runs
    /// until aborted. Counting `/proc/self/fd` costs time in proportion to the descriptors
    /// open (tens of milliseconds at 100,000 connections), so it is done every
    /// [`SAMPLE_EVERY`] only while more than half of the usable descriptors are in use, and
    /// every [`SAMPLE_EVERY_IDLE`] below that: between samples the estimate follows the gate's
    /// own connections, which is where descriptors come and go.
    pub async fn watch(self: Arc<Self>, health: Arc<Health>) {
        metrics::gauge!(m::FD_LIMIT).set(self.limit as f64);
        let usable = self.limit.saturating_sub(self.reserve);
        let mut tick = tokio::time::interval(SAMPLE_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_sample: Option<tokio::time::Instant> = None;
        loop {
            tick.tick().await;
            let busy = self.open_estimate().saturating_mul(2) > usable;
            if busy || last_sample.is_none_or(|t| t.elapsed() >= SAMPLE_EVERY_IDLE) {
                let me = self.clone();
                let _ = tokio::task::spawn_blocking(move || me.sample()).await;
                last_sample = Some(tokio::time::Instant::now());
            }
            metrics::gauge!(m::FD_OPEN).set(self.open_estimate() as f64);
            health.set_descriptors_low(!self.has_room());
        }
    }
}

/// One connection counted in the budget.
#[derive(Debug)]
pub struct Held(Arc<FdBudget>);

impl Drop for Held {
    fn drop(&mut self) {
        self.0.gate_connections.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Open descriptors of this process (`None` where `/proc` cannot tell).
fn count_open() -> Option<u64> {
    std::fs::read_dir("/proc/self/fd")
        .ok()
        .map(|d| d.count().saturating_sub(1) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_follows_connections_between_samples_and_keeps_the_reserve() {
        // 50 open, a reserve of 10: room for exactly two connections.
        let b = FdBudget::with_reserve(50 + 10 + 2 * PER_CONNECTION, 10);
        b.sampled_open.store(50, Ordering::Relaxed);
        assert!(b.has_room());
        let first = b.hold();
        assert!(b.has_room());
        let second = b.hold();
        assert!(!b.has_room(), "the third would eat into the reserve");
        drop(first);
        assert!(
            b.has_room(),
            "a closed connection gives its descriptors back"
        );
        // A sample replaces the estimate with the count, and later moves start from it.
        b.sample();
        let counted = b.open_estimate();
        assert!(counted > 0, "/proc/self/fd counted");
        drop(second);
        assert_eq!(b.open_estimate(), counted - PER_CONNECTION);
    }

    #[test]
    fn the_reserve_is_an_eighth_of_the_limit_within_bounds() {
        assert_eq!(reserve_for(256), 32);
        assert_eq!(reserve_for(1024), 128);
        assert_eq!(reserve_for(400_000), RESERVE);
    }

    #[test]
    fn the_soft_limit_ends_at_the_hard_limit() {
        let soft = raise(1).expect("getrlimit works here");
        let (now_soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
        assert_eq!(soft, now_soft);
        assert_eq!(now_soft, hard);
    }
}
