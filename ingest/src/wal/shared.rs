//! State shared by the `Wal` handles, the writer thread and the readers.

use std::collections::VecDeque;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};

use bytes::Bytes;
use tokio::sync::{oneshot, watch};

use super::ledger::Ledger;
use super::record::{self, Decoded, RecordHeader, HEADER_BYTES};
use super::stats::Counters;
use super::{segment, Lsn, WalError, WalOptions};

/// One append waiting for its group commit.
pub(crate) struct Request {
    pub payload: Bytes,
    /// Completed with the LSN once the record is fsynced, or with the error that prevented it.
    pub done: oneshot::Sender<Result<Lsn, WalError>>,
}

/// Appends handed from callers to the writer thread.
#[derive(Default)]
pub(crate) struct Queue {
    pub pending: VecDeque<Request>,
    /// Framed bytes of queued and in-flight appends, counted against the budget.
    pub reserved_bytes: u64,
    /// No more appends are accepted; the writer drains `pending` and stops.
    pub closed: bool,
    /// The writer sleeps on the condvar and must be woken.
    pub writer_idle: bool,
}

/// What readers and `close` wait on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct DurableMark {
    /// Same as `Ledger::durable_end`, published after the ledger is updated.
    pub end: Lsn,
    /// The writer has stopped; nothing will be appended any more.
    pub closed: bool,
}

/// Everything shared behind the `Wal` handle.
pub(crate) struct Shared {
    pub dir: PathBuf,
    pub id: uuid::Uuid,
    pub opts: WalOptions,
    pub queue: Mutex<Queue>,
    /// Wakes the writer when appends arrive or on close.
    pub queue_cv: Condvar,
    pub ledger: Mutex<Ledger>,
    /// Mirror of `Ledger::unreleased_bytes` for lock-free budget checks.
    pub unreleased_bytes: AtomicU64,
    pub durable: watch::Sender<DurableMark>,
    pub counters: Counters,
    /// Serialises `release` calls.
    pub release_lock: Mutex<()>,
}

/// Locks a mutex, ignoring poisoning: every critical section leaves its data consistent
/// before anything in it can panic.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Shared {
    /// Publishes the ledger's unreleased bytes for the budget check.
    pub fn publish_unreleased(&self, ledger: &Ledger) {
        self.unreleased_bytes
            .store(ledger.unreleased_bytes(), Ordering::Release);
    }

    /// Reads and checks the header of the record at `lsn` in the segment starting at `base`.
    pub fn read_header(&self, base: Lsn, lsn: Lsn) -> Result<RecordHeader, HeaderError> {
        let path = segment::path(&self.dir, base);
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(HeaderError::Gone),
            Err(e) => return Err(HeaderError::Wal(WalError::io("open segment", &path, e))),
        };
        let mut head = [0u8; HEADER_BYTES];
        file.read_exact_at(&mut head, lsn - base)
            .map_err(|e| HeaderError::from_read(&path, e))?;
        // Only the header was read: a complete-but-unchecked frame is reported as Incomplete.
        match record::decode(&head, lsn) {
            Decoded::Incomplete { .. } => {
                let len = u32::from_le_bytes([head[8], head[9], head[10], head[11]]) as usize;
                let mut full = vec![0u8; HEADER_BYTES + len];
                file.read_exact_at(&mut full, lsn - base)
                    .map_err(|e| HeaderError::from_read(&path, e))?;
                match record::decode(&full, lsn) {
                    Decoded::Record(h) => Ok(h),
                    other => Err(HeaderError::NotARecord(format!("{other:?}"))),
                }
            }
            Decoded::Record(h) => Ok(h),
            Decoded::Bad(bad) => Err(HeaderError::NotARecord(bad.to_string())),
        }
    }
}

/// Why `read_header` found no record.
pub(crate) enum HeaderError {
    /// The segment was deleted meanwhile (released).
    Gone,
    /// The bytes there are not a record starting at that LSN.
    NotARecord(String),
    /// The file could not be read.
    Wal(WalError),
}

impl HeaderError {
    fn from_read(path: &std::path::Path, e: std::io::Error) -> Self {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            HeaderError::NotARecord("runs past the end of its segment".into())
        } else {
            HeaderError::Wal(WalError::io("read segment", path, e))
        }
    }
}
