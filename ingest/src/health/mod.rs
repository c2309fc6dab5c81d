//! What `/readyz` reports: shared flags that the broker, the WAL path, the writer and the
//! background checks of `probe` update, and the reasons the service is not ready.
//!
//! Readiness describes the present: every reason is re-checked on its own (`probe`), at least
//! once a second, with or without traffic, so each one clears by itself once its cause is gone.

pub mod probe;

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
    /// Set once the writer reached the database and applied the schema: before that a ping
    /// that answers does not make the service ready.
    writer_ready: AtomicBool,
    /// Unix milliseconds of the last committed batch (0 = never).
    last_commit_ms: AtomicI64,
    /// Unix milliseconds of the last word from or about the database (commit, ping, failure):
    /// the probe pings only while the writer is quiet.
    last_db_event_ms: AtomicI64,
    /// Last database error, for the operator (never contains credentials).
    db_error: Mutex<Option<String>>,
    /// Set when the drain has started.
    draining: AtomicBool,
    /// Set while open descriptors are within the reserve: new MQTT connections wait.
    descriptors_low: AtomicBool,
}

/// Why the service is not ready; each is exported as `ingest_not_ready{reason}` (1 or 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    BrokerNotListening,
    WalUnwritable,
    WalOverBudget,
    DatabaseUnreachable,
    DescriptorsLow,
    Draining,
}

impl Reason {
    pub const ALL: [Reason; 6] = [
        Reason::BrokerNotListening,
        Reason::WalUnwritable,
        Reason::WalOverBudget,
        Reason::DatabaseUnreachable,
        Reason::DescriptorsLow,
        Reason::Draining,
    ];

    /// The label value and the key in `/readyz`'s `not_ready`.
    pub fn code(self) -> &'static str {
        match self {
            Reason::BrokerNotListening => "broker_not_listening",
            Reason::WalUnwritable => "wal_unwritable",
            Reason::WalOverBudget => "wal_over_budget",
            Reason::DatabaseUnreachable => "database_unreachable",
            Reason::DescriptorsLow => "descriptors_low",
            Reason::Draining => "draining",
        }
    }
}

/// The answer of `/readyz`.
#[derive(Debug, serde::Serialize)]
pub struct Readiness {
    pub ready: bool,
    /// The reasons as codes (`Reason::code`), for machines.
    pub not_ready: Vec<&'static str>,
    /// The same reasons in words, for the operator.
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
    pub fn set_descriptors_low(&self, v: bool) {
        if self.descriptors_low.load(Ordering::Relaxed) != v {
            self.descriptors_low.store(v, Ordering::Relaxed);
        }
    }
    pub fn set_draining(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }
    /// The writer talked to the database (schema applied, or a batch committed).
    pub fn db_ok(&self) {
        self.writer_ready.store(true, Ordering::Relaxed);
        self.set_db_up();
    }
    /// The probe's ping was answered: the database is back, once the writer has been there.
    pub fn db_pinged(&self) {
        if self.writer_ready.load(Ordering::Relaxed) {
            self.set_db_up();
        } else {
            self.last_db_event_ms.store(now_ms(), Ordering::Relaxed);
        }
    }
    fn set_db_up(&self) {
        self.last_db_event_ms.store(now_ms(), Ordering::Relaxed);
        self.db_up.store(true, Ordering::Relaxed);
        if let Ok(mut e) = self.db_error.lock() {
            *e = None;
        }
    }
    /// Milliseconds since the last commit, ping or failure at `now` (Unix milliseconds).
    pub fn db_quiet_for_ms(&self, now: i64) -> i64 {
        now - self.last_db_event_ms.load(Ordering::Relaxed)
    }
    pub fn db_failed(&self, error: String) {
        self.last_db_event_ms.store(now_ms(), Ordering::Relaxed);
        self.db_up.store(false, Ordering::Relaxed);
        if let Ok(mut e) = self.db_error.lock() {
            *e = Some(error);
        }
    }
    pub fn committed(&self) {
        let now = now_ms();
        self.last_commit_ms.store(now, Ordering::Relaxed);
        self.last_db_event_ms.store(now, Ordering::Relaxed);
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

    /// The reasons that hold now.
    pub fn reasons(&self) -> Vec<Reason> {
        let flags = [
            (
                Reason::BrokerNotListening,
                !self.broker_listening.load(Ordering::Relaxed),
            ),
            (
                Reason::WalUnwritable,
                !self.wal_writable.load(Ordering::Relaxed),
            ),
            (
                Reason::WalOverBudget,
                self.wal_over_budget.load(Ordering::Relaxed),
            ),
            (
                Reason::DatabaseUnreachable,
                !self.db_up.load(Ordering::Relaxed),
            ),
            (
                Reason::DescriptorsLow,
                self.descriptors_low.load(Ordering::Relaxed),
            ),
            (Reason::Draining, self.draining.load(Ordering::Relaxed)),
        ];
        flags
            .into_iter()
            .filter(|(_, on)| *on)
            .map(|(r, _)| r)
            .collect()
    }

    fn describe(&self, reason: Reason) -> String {
        match reason {
            Reason::BrokerNotListening => "broker: not listening yet".to_string(),
            Reason::WalUnwritable => "wal: cannot write and sync to the WAL volume now (disk full or I/O error); devices are not acknowledged".to_string(),
            Reason::WalOverBudget => "wal: backlog reached its budget; devices are not acknowledged until the database catches up".to_string(),
            Reason::DatabaseUnreachable => {
                let detail = self
                    .db_error
                    .lock()
                    .ok()
                    .and_then(|e| e.clone())
                    .unwrap_or_else(|| "not connected yet".into());
                format!("database: unreachable ({detail}); positions are kept in the WAL")
            }
            Reason::DescriptorsLow => "mqtt: open files near the limit; new connections wait (raise LimitNOFILE / compose ulimits nofile)".to_string(),
            Reason::Draining => "draining: shutting down".to_string(),
        }
    }

    /// Ready = broker listening, WAL taking appends, database reachable, descriptors to spare,
    /// not draining.
    pub fn readiness(&self) -> Readiness {
        let now = self.reasons();
        let reasons: Vec<String> = now.iter().map(|r| self.describe(*r)).collect();
        let not_ready: Vec<&'static str> = now.iter().map(|r| r.code()).collect();
        let db_up = self.db_up.load(Ordering::Relaxed);
        let seconds_since_last_commit = self
            .last_commit_ms()
            .map(|t| (now_ms() - t).max(0) as f64 / 1000.0);
        Readiness {
            ready: reasons.is_empty(),
            not_ready,
            reasons,
            db_up,
            seconds_since_last_commit,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ping_before_the_writer_reached_the_database_does_not_make_it_ready() {
        let h = Health::new();
        h.set_broker_listening(true);
        h.db_pinged();
        assert_eq!(h.reasons(), vec![Reason::DatabaseUnreachable]);
        h.db_ok();
        assert!(h.readiness().ready);
        h.db_failed("gone".into());
        assert!(h.readiness().reasons[0].contains("gone"));
        h.db_pinged();
        assert!(
            h.readiness().ready,
            "a ping brings it back once the writer was there"
        );
    }

    #[test]
    fn each_reason_clears_by_itself() {
        let h = Health::new();
        h.set_broker_listening(true);
        h.db_ok();
        h.set_wal_writable(false);
        h.set_descriptors_low(true);
        let r = h.readiness();
        assert_eq!(r.not_ready, vec!["wal_unwritable", "descriptors_low"]);
        h.set_wal_writable(true);
        h.set_descriptors_low(false);
        assert!(h.readiness().ready);
    }
}
