//! Reading durable records in LSN order, from the segment files (page cache), waiting for
//! new group commits at the end of the log.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tokio::sync::watch;

use super::ledger::Plan;
use super::record::{self, Decoded, HEADER_BYTES};
use super::shared::{lock, DurableMark, HeaderError, Shared};
use super::{segment, Lsn, WalError};

/// Reads a chunk of at least this many bytes when the caller asks for few records.
const MIN_CHUNK: u64 = 64 * 1024;
/// Reads at most this many bytes at once (unless a single record is larger).
const MAX_CHUNK: u64 = 4 * 1024 * 1024;

/// A cursor over the WAL's durable records, created by `Wal::reader`.
pub struct WalReader {
    shared: Arc<Shared>,
    /// The record after which reading starts, until it has been validated.
    start_after: Option<Lsn>,
    started: bool,
    /// Where the next record starts (or the next readable byte after normalisation).
    pos: Lsn,
    /// The open segment, by base LSN.
    file: Option<(Lsn, Arc<File>)>,
    durable: watch::Receiver<DurableMark>,
}

impl std::fmt::Debug for WalReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WalReader")
            .field("pos", &self.pos)
            .field("started", &self.started)
            .finish_non_exhaustive()
    }
}

impl WalReader {
    pub(crate) fn new(shared: Arc<Shared>, after: Option<Lsn>) -> Self {
        let durable = shared.durable.subscribe();
        WalReader {
            shared,
            start_after: after,
            started: false,
            pos: 0,
            file: None,
            durable,
        }
    }

    /// The position the next record is read from.
    pub fn position(&self) -> Lsn {
        self.pos
    }

    /// Returns the next 1..=`max_records` durable records in LSN order, waiting until at least
    /// one exists. Fails with `Closed` once the WAL is closed and every record was read.
    ///
    /// Cancel-safe: dropping the future (for example in `tokio::time::timeout` or `select!`)
    /// loses no record; the next call continues where the last returned batch ended.
    pub async fn next_batch(&mut self, max_records: usize) -> Result<Vec<(Lsn, Bytes)>, WalError> {
        let max_records = max_records.max(1);
        if !self.started {
            self.start().await?;
        }
        loop {
            let plan = lock(&self.shared.ledger).plan(self.pos);
            match plan {
                Plan::Wait { at } => {
                    self.pos = at;
                    let mark = self
                        .durable
                        .wait_for(|m| m.end > at || m.closed)
                        .await
                        .map_err(|_| WalError::Closed)?;
                    if mark.end <= at && mark.closed {
                        return Err(WalError::Closed);
                    }
                }
                Plan::Read { base, from, to } => {
                    self.pos = from;
                    let records = self.read(base, from, to, max_records).await?;
                    if !records.is_empty() {
                        return Ok(records);
                    }
                }
            }
        }
    }

    /// Positions the reader just after `start_after`, checking that it is a record.
    async fn start(&mut self) -> Result<(), WalError> {
        let shared = Arc::clone(&self.shared);
        let after = self.start_after;
        let pos = tokio::task::spawn_blocking(move || start_position(&shared, after))
            .await
            .map_err(|e| WalError::io("start reader", "", std::io::Error::other(e)))??;
        self.pos = pos;
        self.started = true;
        Ok(())
    }

    /// Reads whole records from `[from, to)` of segment `base`. Returns an empty batch if the
    /// segment vanished (released meanwhile).
    async fn read(
        &mut self,
        base: Lsn,
        from: Lsn,
        to: Lsn,
        max_records: usize,
    ) -> Result<Vec<(Lsn, Bytes)>, WalError> {
        let path = segment::path(&self.shared.dir, base);
        let want = (max_records as u64 * 512).clamp(MIN_CHUNK, MAX_CHUNK);
        let mut len = (to - from).min(want);
        loop {
            let Some(chunk) = self.read_chunk(base, from, len).await? else {
                // Released and deleted meanwhile: the ledger no longer lists it.
                if lock(&self.shared.ledger).segment_of(from).is_some() {
                    return Err(WalError::Inconsistent {
                        path,
                        reason: "segment file missing although the WAL still lists it".into(),
                    });
                }
                return Ok(Vec::new());
            };
            let mut records = Vec::new();
            let mut at = 0usize;
            while records.len() < max_records && at < chunk.len() {
                let lsn = from + at as u64;
                match record::decode(&chunk[at..], lsn) {
                    Decoded::Record(h) => {
                        let start = at + HEADER_BYTES;
                        let end = start + h.len as usize;
                        records.push((lsn, chunk.slice(start..end)));
                        at = end;
                    }
                    Decoded::Incomplete { needed } => {
                        if !records.is_empty() {
                            break;
                        }
                        if needed as u64 > to - from {
                            return Err(corrupt(
                                &path,
                                lsn - base,
                                "record runs past the durable end",
                            ));
                        }
                        break;
                    }
                    Decoded::Bad(bad) => return Err(corrupt(&path, lsn - base, &bad.to_string())),
                }
            }
            if records.is_empty() {
                // The first record is larger than the chunk: read exactly enough for it.
                if let Decoded::Incomplete { needed } = record::decode(&chunk, from) {
                    len = needed as u64;
                    continue;
                }
            }
            self.pos = from + at as u64;
            return Ok(records);
        }
    }

    /// Reads `len` bytes at `from` of segment `base` off the async runtime; `None` if the file
    /// is gone.
    async fn read_chunk(
        &mut self,
        base: Lsn,
        from: Lsn,
        len: u64,
    ) -> Result<Option<Bytes>, WalError> {
        let cached = match &self.file {
            Some((b, f)) if *b == base => Some(Arc::clone(f)),
            _ => None,
        };
        let path = segment::path(&self.shared.dir, base);
        let blocking_path = path.clone();
        let result = tokio::task::spawn_blocking(move || -> Result<_, WalError> {
            let file = match cached {
                Some(f) => f,
                None => match File::open(&blocking_path) {
                    Ok(f) => Arc::new(f),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                    Err(e) => return Err(WalError::io("open segment", &blocking_path, e)),
                },
            };
            let mut buf = BytesMut::zeroed(len as usize);
            file.read_exact_at(&mut buf, from - base)
                .map_err(|e| WalError::io("read segment", &blocking_path, e))?;
            Ok(Some((file, buf.freeze())))
        })
        .await
        .map_err(|e| WalError::io("read segment", &path, std::io::Error::other(e)))??;
        match result {
            Some((file, chunk)) => {
                self.file = Some((base, file));
                Ok(Some(chunk))
            }
            None => {
                self.file = None;
                Ok(None)
            }
        }
    }
}

fn corrupt(path: &std::path::Path, offset: u64, reason: &str) -> WalError {
    WalError::Corrupt {
        path: path.to_path_buf(),
        offset,
        reason: reason.to_string(),
    }
}

/// Where a reader that starts after `after` begins.
fn start_position(shared: &Shared, after: Option<Lsn>) -> Result<Lsn, WalError> {
    let Some(after) = after else {
        return Ok(lock(&shared.ledger)
            .segments
            .keys()
            .next()
            .copied()
            .unwrap_or(0));
    };
    let (base, end) = {
        let ledger = lock(&shared.ledger);
        if after >= ledger.durable_end {
            return Err(WalError::InvalidLsn {
                lsn: after,
                wal_id: shared.id,
                reason: format!(
                    "beyond the end of the log (next LSN {}); the checkpoint belongs to another WAL",
                    ledger.durable_end
                ),
            });
        }
        if let Some(end) = ledger.skip_containing(after) {
            return Ok(end);
        }
        match ledger.segment_of(after) {
            // Already released and deleted: start with whatever follows.
            None => return Ok(after + 1),
            Some(base) => (base, ledger.durable_end),
        }
    };
    match shared.read_header(base, after) {
        Ok(h) => Ok(after + h.framed_len()),
        Err(HeaderError::Gone) => Ok(after + 1),
        Err(HeaderError::NotARecord(reason)) => Err(WalError::InvalidLsn {
            lsn: after,
            wal_id: shared.id,
            reason: format!("no record starts there ({reason}); log ends at {end}"),
        }),
        Err(HeaderError::Wal(e)) => Err(e),
    }
}
