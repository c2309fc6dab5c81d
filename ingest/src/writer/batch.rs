//! A batch: the decoded content of a run of consecutive WAL records, written to the database
//! in one transaction together with the LSN of its last record.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use crate::position::{Position, Reject};
use crate::record::Envelope;
use crate::wal::Lsn;

/// A position with the time it was received.
#[derive(Debug, Clone)]
pub struct Row {
    pub position: Position,
    pub received_at: DateTime<Utc>,
}

/// A reject with where it sits in the WAL (kept for the operator).
#[derive(Debug, Clone)]
pub struct RejectRow {
    pub reject: Reject,
    pub received_at: DateTime<Utc>,
    pub lsn: Lsn,
}

#[derive(Debug, Default)]
pub struct Batch {
    pub rows: Vec<Row>,
    pub rejects: Vec<RejectRow>,
    /// Last WAL record covered by this batch: the checkpoint written with it.
    pub last_lsn: Option<Lsn>,
    /// WAL records in the batch.
    pub records: usize,
}

impl Batch {
    pub fn push(&mut self, lsn: Lsn, env: Envelope) {
        let received_at = env.received_at;
        self.rows
            .extend(env.positions.into_iter().map(|position| Row {
                position,
                received_at,
            }));
        self.rejects
            .extend(env.rejects.into_iter().map(|reject| RejectRow {
                reject,
                received_at,
                lsn,
            }));
        self.last_lsn = Some(lsn);
        self.records += 1;
    }

    /// A WAL record that could not be decoded still advances the checkpoint; it is kept as a
    /// reject so that nothing disappears without a trace.
    pub fn push_undecodable(&mut self, lsn: Lsn, reject: Reject) {
        self.rejects.push(RejectRow {
            reject,
            received_at: Utc::now(),
            lsn,
        });
        self.last_lsn = Some(lsn);
        self.records += 1;
    }

    pub fn is_empty(&self) -> bool {
        self.records == 0
    }

    /// The newest position of each device in this batch (for `device_latest`).
    pub fn latest_per_device(&self) -> Vec<&Position> {
        let mut latest: HashMap<&str, &Position> = HashMap::new();
        for row in &self.rows {
            let p = &row.position;
            latest
                .entry(p.device_id.as_str())
                .and_modify(|cur| {
                    if p.time > cur.time {
                        *cur = p;
                    }
                })
                .or_insert(p);
        }
        latest.into_values().collect()
    }
}
