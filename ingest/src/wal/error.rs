//! Every way a WAL operation can fail, each with what the caller or operator should do.

use std::io;
use std::path::PathBuf;

use super::Lsn;

/// Errors of the write-ahead log.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    /// The unreleased backlog reached the disk budget; nothing was written.
    #[error(
        "WAL disk budget exhausted: {unreleased_bytes} unreleased bytes >= budget of {budget_bytes} bytes; \
         nothing was written. Appends resume once the database writer catches up and releases records"
    )]
    BudgetExceeded {
        /// Unreleased (not yet in the database) plus in-flight bytes at the time of the append.
        unreleased_bytes: u64,
        /// The configured `WalOptions::budget_bytes`.
        budget_bytes: u64,
    },

    /// The payload is larger than `WalOptions::max_record_bytes`.
    #[error(
        "record of {len} bytes exceeds the WAL maximum of {max} bytes; split or reject the message"
    )]
    RecordTooLarge {
        /// Payload length of the rejected record.
        len: usize,
        /// The configured maximum.
        max: usize,
    },

    /// The WAL was closed (or its writer stopped); no more appends are accepted.
    #[error("the WAL is closed; no more records are accepted")]
    Closed,

    /// A file operation failed (ENOSPC, EIO, permissions, ...). Appends that get this error
    /// were not made durable and must not be acknowledged; later appends retry.
    #[error("WAL I/O error while trying to {op} {path}: {source}; check free disk space and permissions")]
    Io {
        /// What the WAL was doing.
        op: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// Another process (or another `Wal` in this process) holds the directory lock.
    #[error("WAL directory {path} is already in use by another process or handle; stop it first")]
    Locked {
        /// The WAL directory.
        path: PathBuf,
    },

    /// The `wal_id` file is missing next to existing segments, or is unreadable.
    #[error("WAL identity file {path} is invalid: {reason}")]
    BadIdentity {
        /// The identity file.
        path: PathBuf,
        /// What is wrong and what to do.
        reason: String,
    },

    /// A record failed its checksum where recovery had found it intact (on-disk corruption
    /// since the WAL was opened). Reopening the WAL quarantines it.
    #[error("corrupt WAL record in {path} at byte {offset}: {reason}; restart to quarantine it")]
    Corrupt {
        /// The segment file.
        path: PathBuf,
        /// Byte offset of the record inside the segment.
        offset: u64,
        /// What check failed.
        reason: String,
    },

    /// Segment files contradict each other (overlapping LSN ranges, unparsable names).
    #[error("WAL directory {path} is inconsistent: {reason}")]
    Inconsistent {
        /// The WAL directory or offending file.
        path: PathBuf,
        /// What is inconsistent and what to do.
        reason: String,
    },

    /// An LSN given to `release` or `reader` is not a record of this WAL.
    #[error("LSN {lsn} is not a record of WAL {wal_id}: {reason}")]
    InvalidLsn {
        /// The LSN the caller passed.
        lsn: Lsn,
        /// The WAL's identity, to compare with the checkpoint's.
        wal_id: uuid::Uuid,
        /// Why it was refused.
        reason: String,
    },

    /// `WalOptions` do not make sense.
    #[error("invalid WAL options: {0}")]
    InvalidOptions(String),
}

impl WalError {
    /// Wraps an I/O error with what was being done to which path.
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        WalError::Io {
            op,
            path: path.into(),
            source,
        }
    }

    /// A copy for fanning one batch failure out to many appenders (`io::Error` is not `Clone`).
    pub(crate) fn duplicate(&self) -> Self {
        match self {
            WalError::Io { op, path, source } => WalError::Io {
                op,
                path: path.clone(),
                source: match source.raw_os_error() {
                    Some(code) => io::Error::from_raw_os_error(code),
                    None => io::Error::new(source.kind(), source.to_string()),
                },
            },
            WalError::Closed => WalError::Closed,
            other => WalError::Inconsistent {
                path: PathBuf::new(),
                reason: other.to_string(),
            },
        }
    }
}
