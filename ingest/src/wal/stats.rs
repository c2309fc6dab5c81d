//! Numbers about the WAL for metrics and readiness: counters and a point-in-time snapshot.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use super::Lsn;

/// A snapshot of the WAL's state; the caller exports it as metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalStats {
    /// Bytes of segment files on disk.
    pub disk_bytes: u64,
    /// Segment files on disk.
    pub segments: u64,
    /// Bytes appended but not yet released (the database backlog).
    pub unreleased_bytes: u64,
    /// Records appended but not yet released.
    pub unreleased_records: u64,
    /// When the oldest unreleased record was appended.
    pub oldest_unreleased_appended_at: Option<SystemTime>,
    /// LSN of the newest durable record.
    pub last_durable_lsn: Option<Lsn>,
    /// The configured disk budget.
    pub budget_bytes: u64,
    /// Group commits (`fdatasync` calls that acknowledged appends) since open.
    pub fsyncs: u64,
    /// Appends acknowledged since open.
    pub appends: u64,
    /// Appends that failed on an I/O error since open.
    pub append_failures: u64,
    /// Appends refused with `BudgetExceeded` since open.
    pub budget_rejections: u64,
    /// Quarantined ranges in `quarantine/`.
    pub quarantined: u64,
    /// Segment files deleted by `release` since open.
    pub segments_deleted: u64,
}

/// Monotonic counters updated without locks.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub fsyncs: AtomicU64,
    pub appends: AtomicU64,
    pub append_failures: AtomicU64,
    pub budget_rejections: AtomicU64,
    pub quarantined: AtomicU64,
    pub segments_deleted: AtomicU64,
}

impl Counters {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}
