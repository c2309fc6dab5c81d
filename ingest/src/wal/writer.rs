//! The group-commit writer: one thread turns every queued append into one write and one
//! `fdatasync`, then completes each append with its LSN.
//!
//! While a batch is being fsynced, new appends queue up; the next batch takes all of them
//! (up to `max_batch_bytes`), so with many concurrent appenders one fsync covers hundreds of
//! records. On a failed write or fsync the whole batch fails and the segment is marked for
//! repair; see the module documentation of `wal` for why truncating back is safe.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tracing::{debug, error, info, warn};

use super::identity::DirLock;
use super::record::{self, RecordHeader};
use super::shared::{lock, Request, Shared};
use super::stats::Counters;
use super::{segment, Lsn, WalError};
use crate::log_throttle::Throttle;

/// At most one line per interval about failed group commits and the repairs after them.
static FAILURE_LOG: Throttle = Throttle::new(Duration::from_secs(10));
static REPAIR_LOG: Throttle = Throttle::new(Duration::from_secs(10));

/// The segment appends go to, as only the writer sees it.
pub(crate) struct ActiveSegment {
    pub base: Lsn,
    /// `None` after a failure, until the repair reopens it.
    pub file: Option<File>,
    /// Durable length: everything below is fsynced; nothing above is acknowledged.
    pub len: u64,
}

/// Runs the writer until the WAL is closed and the queue drained.
pub(crate) fn run(shared: Arc<Shared>, active: ActiveSegment, dir_lock: DirLock) {
    // Marks the WAL closed even if this thread panics, so `close` and readers never hang.
    let mut guard = StopGuard {
        shared: Arc::clone(&shared),
        dir_lock: Some(dir_lock),
    };
    let mut writer = Writer {
        shared: Arc::clone(&shared),
        active,
        buf: Vec::with_capacity(1 << 20),
    };
    while let Some(batch) = writer.take_batch() {
        writer.commit(batch);
    }
    // Release the directory lock before announcing the stop, so a reopen right after `close`
    // succeeds.
    guard.dir_lock.take();
    info!(dir = %shared.dir.display(), "WAL writer stopped");
}

struct StopGuard {
    shared: Arc<Shared>,
    dir_lock: Option<DirLock>,
}

impl Drop for StopGuard {
    fn drop(&mut self) {
        self.dir_lock.take();
        lock(&self.shared.queue).closed = true;
        // Fail whatever is still queued (only possible if the writer panicked).
        let leftover: Vec<Request> = lock(&self.shared.queue).pending.drain(..).collect();
        for req in leftover {
            let _ = req.done.send(Err(WalError::Closed));
        }
        self.shared.durable.send_modify(|m| m.closed = true);
    }
}

struct Writer {
    shared: Arc<Shared>,
    active: ActiveSegment,
    /// Reused encoding buffer.
    buf: Vec<u8>,
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

impl Writer {
    /// Waits for appends; returns `None` once closed and drained.
    fn take_batch(&self) -> Option<Vec<Request>> {
        let mut q = lock(&self.shared.queue);
        while q.pending.is_empty() {
            if q.closed {
                return None;
            }
            q.writer_idle = true;
            q = self
                .shared
                .queue_cv
                .wait(q)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            q.writer_idle = false;
        }
        let max = self.shared.opts.max_batch_bytes as u64;
        let mut bytes = 0;
        let mut batch = Vec::with_capacity(q.pending.len());
        while let Some(req) = q.pending.front() {
            let framed = record::framed_len(req.payload.len());
            if !batch.is_empty() && bytes + framed > max {
                break;
            }
            bytes += framed;
            if let Some(req) = q.pending.pop_front() {
                batch.push(req);
            }
        }
        Some(batch)
    }

    fn commit(&mut self, batch: Vec<Request>) {
        let shared = Arc::clone(&self.shared);
        let counters = &shared.counters;
        let bytes: u64 = batch
            .iter()
            .map(|r| record::framed_len(r.payload.len()))
            .sum();
        let result = self.write_batch(&batch);
        // Return the batch's budget reservation before anyone learns the outcome: on success
        // its bytes are now counted as unreleased, so an appender that follows sees an exact
        // figure rather than the batch counted twice.
        lock(&shared.queue).reserved_bytes -= bytes;
        match result {
            Ok(first) => {
                Counters::add(&counters.appends, batch.len() as u64);
                let mut lsn = first;
                for req in batch {
                    let framed = record::framed_len(req.payload.len());
                    // The appender may have given up waiting; the record is durable anyway.
                    let _ = req.done.send(Ok(lsn));
                    lsn += framed;
                }
            }
            Err(e) => {
                Counters::add(&counters.append_failures, batch.len() as u64);
                // Every batch fails alike while the disk is full: one line per interval.
                if let Some(n) = FAILURE_LOG.hit() {
                    error!(error = %e, records = batch.len(), failed_commits = n, "WAL group commit failed; appends not acknowledged");
                }
                for req in batch {
                    let _ = req.done.send(Err(e.duplicate()));
                }
                // Cut the partial bytes now rather than at the next batch, so the file never
                // keeps them longer than necessary. If this fails too, the next batch retries.
                let dir = self.shared.dir.clone();
                if let Err(repair) = self.repair_if_needed(&dir) {
                    error!(error = %repair, "WAL segment repair failed; appends fail until it succeeds");
                }
            }
        }
    }

    /// Writes and fsyncs the batch; returns the LSN of its first record.
    fn write_batch(&mut self, batch: &[Request]) -> Result<Lsn, WalError> {
        let dir = self.shared.dir.clone();
        self.repair_if_needed(&dir)?;
        if self.active.len >= self.shared.opts.segment_bytes {
            self.roll_over(&dir)?;
        }
        let first = self.active.base + self.active.len;
        let next_seq = lock(&self.shared.ledger).next_seq;
        let appended_us = now_us();
        self.buf.clear();
        let mut last_lsn = first;
        for (i, req) in batch.iter().enumerate() {
            last_lsn = first + self.buf.len() as u64;
            let header = RecordHeader {
                len: req.payload.len() as u32,
                lsn: last_lsn,
                seq: next_seq + i as u64,
                appended_us,
            };
            record::encode(&mut self.buf, &header, &req.payload);
        }
        let path = segment::path(&dir, self.active.base);
        let Some(file) = self.active.file.as_ref() else {
            return Err(WalError::io(
                "write",
                &path,
                std::io::Error::other("segment not open"),
            ));
        };
        let written = file
            .write_all_at(&self.buf, self.active.len)
            .map_err(|e| WalError::io("write", &path, e))
            .and_then(|()| {
                file.sync_data()
                    .map_err(|e| WalError::io("fdatasync", &path, e))
            });
        if let Err(e) = written {
            // Never trust this file descriptor again: bytes above `len` are in an unknown
            // state and the kernel may have dropped the dirty pages. Repair truncates them.
            self.active.file = None;
            return Err(e);
        }
        Counters::add(&self.shared.counters.fsyncs, 1);
        self.active.len += self.buf.len() as u64;
        let end = self.active.base + self.active.len;
        {
            let mut ledger = lock(&self.shared.ledger);
            if ledger.release_seq == ledger.next_seq {
                ledger.oldest_unreleased_us = Some(appended_us);
            }
            ledger.segments.insert(self.active.base, end);
            ledger.durable_end = end;
            ledger.last_durable_lsn = Some(last_lsn);
            ledger.next_seq = next_seq + batch.len() as u64;
            self.shared.publish_unreleased(&ledger);
        }
        self.shared.durable.send_modify(|m| m.end = end);
        Ok(first)
    }

    /// After a failed write or fsync: reopen the segment, cut it back to its durable length
    /// and fsync that, before anything else is written.
    fn repair_if_needed(&mut self, dir: &Path) -> Result<(), WalError> {
        if self.active.file.is_some() {
            return Ok(());
        }
        let path = segment::path(dir, self.active.base);
        let file = segment::open_for_append(dir, self.active.base)?;
        file.set_len(self.active.len)
            .and_then(|()| file.sync_all())
            .map_err(|e| WalError::io("truncate back after a failed write", &path, e))?;
        if let Some(n) = REPAIR_LOG.hit() {
            warn!(segment = %path.display(), len = self.active.len, repairs = n, "WAL segment repaired after a failed write");
        }
        self.active.file = Some(file);
        Ok(())
    }

    /// Starts a new segment at the current end of the log.
    fn roll_over(&mut self, dir: &Path) -> Result<(), WalError> {
        let base = self.active.base + self.active.len;
        let file = segment::create(dir, base)?;
        debug!(base, "WAL started a new segment");
        lock(&self.shared.ledger).segments.insert(base, base);
        self.active = ActiveSegment {
            base,
            file: Some(file),
            len: 0,
        };
        Ok(())
    }
}
