//! What `/readyz` reports: shared flags that the broker, the WAL path and the writer update,
//! and the reasons the service is not ready (or degraded).

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// Readiness state shared by every task. Cheap to update on hot paths (atomics).
#[derive(Debug, Default)]
pub struct Health {
    /// Set once every MQTT listener is bound.
    broker_listening: AtomicBool,
    /// Cleared when an append failed for a reason other than the budget; set by the next success.
    wal_writable: AtomicBool,
    /// Set while the WAL refuses appends because the backlog reached its budget.
    wal_over_budget: AtomicBool,
    /// Set while the writer can talk to the database.
    db_up: AtomicBool,
    /// Unix milliseconds of the last committed batch (0 = never).
    last_commit_ms: AtomicI64,
    /// Last database error, for the operator (never contains credentials).
    db_error: Mutex<Option<String>>,
    /// Set when the drain has started.
    draining: AtomicBool,
}

/// The answer of `/readyz`.
#[derive(Debug, serde::Serialize)]
pub struct Readiness {
    pub ready: bool,
    pub reasons: Vec<String>,
    pub db_up: bool,
    pub seconds_since_last_commit: Option<f64>,
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Health {
    pub fn new() -> Self {
        let h = Self::default();
        h.wal_writable.store(true, Ordering::Relaxed);
        h
    }

    pub fn set_broker_listening(&self, v: bool) {
        self.broker_listening.store(v, Ordering::Relaxed);
    }
    pub fn set_wal_writable(&self, v: bool) {
        if self.wal_writable.load(Ordering::Relaxed) != v {
            self.wal_writable.store(v, Ordering::Relaxed);
        }
    }
    pub fn set_wal_over_budget(&self, v: bool) {
        if self.wal_over_budget.load(Ordering::Relaxed) != v {
            self.wal_over_budget.store(v, Ordering::Relaxed);
        }
    }
    pub fn set_draining(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }
    pub fn db_ok(&self) {
        self.db_up.store(true, Ordering::Relaxed);
        if let Ok(mut e) = self.db_error.lock() {
            *e = None;
        }
    }
    pub fn db_failed(&self, error: String) {
        self.db_up.store(false, Ordering::Relaxed);
        if let Ok(mut e) = self.db_error.lock() {
            *e = Some(error);
        }
    }
    pub fn committed(&self) {
        self.last_commit_ms.store(now_ms(), Ordering::Relaxed);
    }
    pub fn is_db_up(&self) -> bool {
        self.db_up.load(Ordering::Relaxed)
    }
    pub fn last_commit_ms(&self) -> Option<i64> {
        match self.last_commit_ms.load(Ordering::Relaxed) {
            0 => None,
            v => Some(v),
        }
    }

    /// Ready = broker listening, WAL taking appends, database reachable, not draining.
    pub fn readiness(&self) -> Readiness {
        let mut reasons = Vec::new();
        if !self.broker_listening.load(Ordering::Relaxed) {
            reasons.push("broker: not listening yet".to_string());
        }
        if !self.wal_writable.load(Ordering::Relaxed) {
            reasons.push(
                "wal: last append failed (disk full or I/O error); devices are not acknowledged"
                    .to_string(),
            );
        }
        if self.wal_over_budget.load(Ordering::Relaxed) {
            reasons.push("wal: backlog reached its budget; devices are not acknowledged until the database catches up".to_string());
        }
        let db_up = self.db_up.load(Ordering::Relaxed);
        if !db_up {
            let detail = self
                .db_error
                .lock()
                .ok()
                .and_then(|e| e.clone())
                .unwrap_or_else(|| "not connected yet".into());
            reasons.push(format!(
                "database: unreachable ({detail}); positions are kept in the WAL"
            ));
        }
        if self.draining.load(Ordering::Relaxed) {
            reasons.push("draining: shutting down".to_string());
        }
        let seconds_since_last_commit = self
            .last_commit_ms()
            .map(|t| (now_ms() - t).max(0) as f64 / 1000.0);
        Readiness {
            ready: reasons.is_empty(),
            reasons,
            db_up,
            seconds_since_last_commit,
        }
    }
}
