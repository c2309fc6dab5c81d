//! The write-ahead log: CRC-checked records in segment files, group-committed fsync.
//!
//! The broker's publish hook calls [`Wal::append`] and sends PUBACK only when it returns an
//! LSN: the record is then on disk (`fdatasync` done) and will be read back after any crash.
//! The database writer reads with a [`WalReader`], COPYs batches into PostgreSQL together with
//! the checkpoint `(Wal::id(), lsn)`, then calls [`Wal::release`] so whole segments can go.
//!
//! ## Layout of the directory
//! ```text
//! <dir>/wal_id                     random UUID of this log (the checkpoint key)
//! <dir>/LOCK                       flock'd while a process has the WAL open
//! <dir>/<first LSN, 16 hex>.seg    segments, in LSN order (see `record` for the framing)
//! <dir>/quarantine/<base>-<offset>.bad   corrupt ranges moved aside by recovery
//! ```
//! An LSN is the byte position of a record in the log (segment base + offset in the file), so
//! it grows with every append, also across restarts and releases: the newest segment is never
//! deleted and the next LSN is its end.
//!
//! ## Modules
//! - `record`: framing (magic, CRC-32C, length, LSN, sequence, time, payload);
//! - `segment`: file naming, listing, creation, directory fsync;
//! - `identity`: the `wal_id` file and the directory lock;
//! - `recovery` + `quarantine`: the scan at open;
//! - `ledger`: which ranges exist, are durable, are released;
//! - `writer`: the group-commit thread; `reader`: [`WalReader`]; `stats`: [`WalStats`].
//!
//! ## Guarantees and the failure policy
//! - An append returns `Ok(lsn)` only after the write and the `fdatasync` covering it
//!   succeeded. Readers only see bytes below the durable end.
//! - Segment creation and deletion fsync the directory; recovery fsyncs every segment before
//!   the WAL is used, so records written by a killed process (not yet fsynced, never
//!   acknowledged) are durable before the database writer can checkpoint them.
//! - If `write` or `fdatasync` fails (ENOSPC, EIO), every append of that batch gets the error
//!   (never acknowledged) and the writer drops its file descriptor: after a failed fsync Linux
//!   may have discarded the dirty pages and marked them clean, so neither the page cache nor
//!   a retried fsync on that descriptor can be trusted. The next batch first reopens the
//!   segment, truncates it back to the last durable length and fsyncs that; only then does it
//!   write again at that same position. The bytes below that length were durable before the
//!   failure (a successful earlier fsync), so nothing acknowledged is touched; the failed
//!   bytes are gone, and their LSNs are reused by the retry (they were never acknowledged nor
//!   visible to readers). If the truncation itself fails, each later batch fails the same way
//!   until it succeeds: the WAL refuses appends rather than acknowledging on a bad file.
//!   Residual risk: a crash between the failed fsync and the repair can leave complete
//!   records of the failed batch on disk; recovery then keeps them. They were never
//!   acknowledged, so at worst a device resends a position the database already has.
//! - A power loss in the middle of a batch can persist later pages of it but not earlier ones;
//!   recovery then sees valid records after a bad range and quarantines the range although it
//!   was never acknowledged. Quarantine files are evidence for an operator, not a promise
//!   that data was lost.
//! - Dropping an `append` future after it was queued may still write the record; the caller
//!   just never learns its LSN (and does not acknowledge it).

mod error;
mod identity;
mod ledger;
mod options;
mod quarantine;
mod reader;
pub mod record;
mod recovery;
mod segment;
mod shared;
mod stats;
mod writer;

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use bytes::Bytes;
use tokio::sync::{oneshot, watch};
use tracing::{info, warn};

pub use error::WalError;
pub use options::{WalOptions, MAX_RECORD_BYTES_LIMIT};
pub use reader::WalReader;
pub use recovery::{QuarantinedRange, RecoveryReport, TornTail};
pub use stats::WalStats;

use ledger::Ledger;
use shared::{lock, DurableMark, HeaderError, Queue, Request, Shared};
use stats::Counters;

/// Monotonic record position: the byte offset of the record in the log. Never reused for a
/// given WAL id once acknowledged.
pub type Lsn = u64;

/// Handle to an open WAL; cheap to clone, `Send + Sync`.
#[derive(Clone)]
pub struct Wal {
    inner: Arc<Handle>,
}

impl std::fmt::Debug for Wal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wal")
            .field("dir", &self.inner.shared.dir)
            .field("id", &self.inner.shared.id)
            .finish_non_exhaustive()
    }
}

/// Owned by all `Wal` clones; stops the writer when the last one goes.
struct Handle {
    shared: Arc<Shared>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shared.shut_down();
    }
}

impl Shared {
    /// Stops accepting appends and wakes the writer so it drains and exits.
    fn shut_down(&self) {
        lock(&self.queue).closed = true;
        self.queue_cv.notify_all();
    }
}

impl Wal {
    /// Opens (creating if needed) the WAL in `dir`; recovers: cuts a torn tail, quarantines
    /// corrupt middle records; returns what recovery did. Blocking (file I/O).
    pub fn open(dir: &Path, opts: WalOptions) -> Result<(Wal, RecoveryReport), WalError> {
        opts.validate()?;
        std::fs::create_dir_all(dir).map_err(|e| WalError::io("create directory", dir, e))?;
        // The directory's own entry must be durable too (it may have just been created, here
        // or by the caller), or a power loss could lose the whole WAL with acknowledged records.
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            segment::sync_dir(parent)?;
        }
        let dir_lock = identity::lock(dir)?;
        let mut files = segment::list(dir)?;
        let (id, created) = identity::load_or_create(dir, &files)?;
        if created {
            files = segment::list(dir)?;
        }
        let mut recovered = recovery::recover(dir, &files)?;
        recovered.report.created = created;
        let quarantined = quarantine::count(dir)?;

        let mut ledger = Ledger {
            next_seq: recovered.next_seq,
            ..Ledger::default()
        };
        ledger.segments.extend(recovered.segments.iter().copied());
        ledger.skips.extend(recovered.skips.iter().copied());
        let (Some(&(first_base, _)), Some(&(active_base, active_end))) =
            (recovered.segments.first(), recovered.segments.last())
        else {
            return Err(WalError::Inconsistent {
                path: dir.to_path_buf(),
                reason: "no segment file after recovery".into(),
            });
        };
        ledger.durable_end = active_end;
        ledger.last_durable_lsn = recovered.report.last_lsn;
        ledger.release_point = ledger.normalize(first_base);
        match recovered.oldest {
            Some((seq, appended_us)) => {
                ledger.release_seq = seq;
                ledger.oldest_unreleased_us = Some(appended_us);
            }
            None => ledger.release_seq = ledger.next_seq,
        }

        let file = segment::open_for_append(dir, active_base)?;
        let active = writer::ActiveSegment {
            base: active_base,
            file: Some(file),
            len: active_end - active_base,
        };
        let (durable, _) = watch::channel(DurableMark {
            end: active_end,
            closed: false,
        });
        let shared = Arc::new(Shared {
            dir: dir.to_path_buf(),
            id,
            opts,
            queue: Mutex::new(Queue::default()),
            queue_cv: Condvar::new(),
            unreleased_bytes: Default::default(),
            ledger: Mutex::new(ledger),
            durable,
            counters: Counters::default(),
            release_lock: Mutex::new(()),
        });
        shared.publish_unreleased(&lock(&shared.ledger));
        Counters::add(&shared.counters.quarantined, quarantined);

        let thread_shared = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("wal-writer".into())
            .spawn(move || writer::run(thread_shared, active, dir_lock))
            .map_err(|e| WalError::io("start writer thread for", dir, e))?;
        info!(dir = %dir.display(), wal_id = %id, next_lsn = active_end, "WAL open");
        Ok((
            Wal {
                inner: Arc::new(Handle { shared }),
            },
            recovered.report,
        ))
    }

    fn shared(&self) -> &Arc<Shared> {
        &self.inner.shared
    }

    /// The random identity created with the directory; key the database checkpoint by it.
    pub fn id(&self) -> uuid::Uuid {
        self.shared().id
    }

    /// Appends one record; returns only when it is durable on disk (fsync'd), with its LSN.
    /// `Err(BudgetExceeded)` when unreleased bytes reach the budget (nothing written); `Err` on
    /// I/O failure: the caller must not acknowledge. Never a partial success.
    pub async fn append(&self, payload: Bytes) -> Result<Lsn, WalError> {
        let shared = self.shared();
        let max = shared.opts.max_record_bytes;
        if payload.len() > max {
            return Err(WalError::RecordTooLarge {
                len: payload.len(),
                max,
            });
        }
        let framed = record::framed_len(payload.len());
        let (done, rx) = oneshot::channel();
        {
            let mut q = lock(&shared.queue);
            if q.closed {
                return Err(WalError::Closed);
            }
            let used = shared.unreleased_bytes.load(Ordering::Acquire) + q.reserved_bytes;
            if used >= shared.opts.budget_bytes {
                drop(q);
                Counters::add(&shared.counters.budget_rejections, 1);
                return Err(WalError::BudgetExceeded {
                    unreleased_bytes: used,
                    budget_bytes: shared.opts.budget_bytes,
                });
            }
            q.reserved_bytes += framed;
            q.pending.push_back(Request { payload, done });
            if q.writer_idle {
                q.writer_idle = false;
                shared.queue_cv.notify_one();
            }
        }
        rx.await.unwrap_or(Err(WalError::Closed))
    }

    /// Reads records in LSN order starting after `after` (`None` = from the oldest record on
    /// disk). Records at or below `after` that were released are skipped.
    pub fn reader(&self, after: Option<Lsn>) -> WalReader {
        WalReader::new(Arc::clone(self.shared()), after)
    }

    /// Everything `<= upto` is in the database: deletes segments that hold only such records
    /// (never the newest). `upto` must be the LSN of a record (or already released).
    /// Blocking (file I/O).
    pub fn release(&self, upto: Lsn) -> Result<(), WalError> {
        let shared = self.shared();
        let _serial = lock(&shared.release_lock);
        let invalid = |reason: String| WalError::InvalidLsn {
            lsn: upto,
            wal_id: shared.id,
            reason,
        };
        let doomed: Vec<Lsn> = {
            let mut ledger = lock(&shared.ledger);
            if upto < ledger.release_point {
                return Ok(());
            }
            if upto >= ledger.durable_end {
                return Err(invalid(format!(
                    "beyond the end of the log (next LSN {}); nothing there can be in the database",
                    ledger.durable_end
                )));
            }
            // Just past the record at `upto`, or past the quarantined range holding it.
            let past = match ledger.skip_containing(upto) {
                Some(end) => end,
                None => {
                    let Some(base) = ledger.segment_of(upto) else {
                        return Ok(());
                    };
                    match shared.read_header(base, upto) {
                        Ok(h) => upto + h.framed_len(),
                        Err(HeaderError::Gone) => return Ok(()),
                        Err(HeaderError::NotARecord(r)) => {
                            return Err(invalid(format!("no record starts there ({r})")))
                        }
                        Err(HeaderError::Wal(e)) => return Err(e),
                    }
                }
            };
            let point = ledger.normalize(past);
            // The oldest unreleased record, for the backlog age and count.
            let oldest = match ledger.segment_of(point) {
                Some(base) if point < ledger.durable_end => match shared.read_header(base, point) {
                    Ok(h) => Some(h),
                    Err(HeaderError::Wal(e)) => return Err(e),
                    Err(_) => None,
                },
                _ => None,
            };
            ledger.release_point = point;
            match oldest {
                Some(h) => {
                    ledger.release_seq = h.seq;
                    ledger.oldest_unreleased_us = Some(h.appended_us);
                }
                None => {
                    ledger.release_seq = ledger.next_seq;
                    ledger.oldest_unreleased_us = None;
                }
            }
            let newest = ledger.segments.keys().next_back().copied();
            let doomed: Vec<Lsn> = ledger
                .segments
                .iter()
                .filter(|(base, end)| **end <= point && Some(**base) != newest)
                .map(|(base, _)| *base)
                .collect();
            for base in &doomed {
                ledger.segments.remove(base);
            }
            let first_kept = ledger.segments.keys().next().copied().unwrap_or(0);
            ledger.skips.retain(|start, _| *start >= first_kept);
            shared.publish_unreleased(&ledger);
            doomed
        };
        if doomed.is_empty() {
            return Ok(());
        }
        for base in &doomed {
            let path = segment::path(&shared.dir, *base);
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    warn!(segment = %path.display(), "released segment was already gone");
                }
                Err(e) => return Err(WalError::io("delete released segment", &path, e)),
            }
        }
        segment::sync_dir(&shared.dir)?;
        Counters::add(&shared.counters.segments_deleted, doomed.len() as u64);
        info!(segments = doomed.len(), upto, "WAL released segments");
        Ok(())
    }

    /// A snapshot of sizes, backlog and counters.
    pub fn stats(&self) -> WalStats {
        let shared = self.shared();
        let c = &shared.counters;
        let ledger = lock(&shared.ledger);
        WalStats {
            disk_bytes: ledger.disk_bytes(),
            segments: ledger.segments.len() as u64,
            unreleased_bytes: ledger.unreleased_bytes(),
            unreleased_records: ledger.next_seq.saturating_sub(ledger.release_seq),
            oldest_unreleased_appended_at: ledger
                .oldest_unreleased_us
                .map(|us| UNIX_EPOCH + Duration::from_micros(us)),
            last_durable_lsn: ledger.last_durable_lsn,
            budget_bytes: shared.opts.budget_bytes,
            fsyncs: Counters::get(&c.fsyncs),
            appends: Counters::get(&c.appends),
            append_failures: Counters::get(&c.append_failures),
            budget_rejections: Counters::get(&c.budget_rejections),
            quarantined: Counters::get(&c.quarantined),
            segments_deleted: Counters::get(&c.segments_deleted),
        }
    }

    /// Stops accepting appends, lets the writer fsync what is in flight, and returns when it
    /// has stopped (the directory lock is then released, so the WAL can be reopened).
    pub async fn close(&self) -> Result<(), WalError> {
        let shared = self.shared();
        shared.shut_down();
        let mut rx = shared.durable.subscribe();
        rx.wait_for(|m| m.closed)
            .await
            .map_err(|_| WalError::Closed)?;
        Ok(())
    }
}
