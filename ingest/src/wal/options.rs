//! Tuning knobs of the WAL, with defaults sized for an edge node and validation.

use super::WalError;

/// How the WAL lays out and limits its files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalOptions {
    /// A new segment file is started once the current one holds at least this many bytes.
    /// Default 64 MiB.
    pub segment_bytes: u64,
    /// Appends fail with `BudgetExceeded` once this many bytes are unreleased (appended but not
    /// yet confirmed in the database) or in flight. Disk usage can exceed it by at most one
    /// segment plus one batch. Default 8 GiB.
    pub budget_bytes: u64,
    /// Largest accepted payload. Default 1 MiB.
    pub max_record_bytes: usize,
    /// Largest amount of framed bytes one group commit writes before it fsyncs. Default 8 MiB.
    pub max_batch_bytes: usize,
}

/// Hard upper bound for `max_record_bytes`: the record length field is 32 bits and readers
/// must be able to buffer a record.
pub const MAX_RECORD_BYTES_LIMIT: usize = 64 * 1024 * 1024;

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions {
            segment_bytes: 64 * 1024 * 1024,
            budget_bytes: 8 * 1024 * 1024 * 1024,
            max_record_bytes: 1024 * 1024,
            max_batch_bytes: 8 * 1024 * 1024,
        }
    }
}

impl WalOptions {
    /// Checks that the options are usable.
    pub fn validate(&self) -> Result<(), WalError> {
        if self.segment_bytes < 1024 {
            return Err(WalError::InvalidOptions(format!(
                "segment_bytes is {}, it must be at least 1024",
                self.segment_bytes
            )));
        }
        if self.budget_bytes == 0 {
            return Err(WalError::InvalidOptions(
                "budget_bytes is 0, so no record could ever be appended".into(),
            ));
        }
        if self.max_record_bytes == 0 || self.max_record_bytes > MAX_RECORD_BYTES_LIMIT {
            return Err(WalError::InvalidOptions(format!(
                "max_record_bytes is {}, it must be between 1 and {MAX_RECORD_BYTES_LIMIT}",
                self.max_record_bytes
            )));
        }
        if self.max_batch_bytes == 0 {
            return Err(WalError::InvalidOptions("max_batch_bytes is 0".into()));
        }
        Ok(())
    }
}
