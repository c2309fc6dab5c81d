//! Recovery at open: scan every segment, cut a torn tail, quarantine corrupt middles, and make
//! everything that survives durable before anyone reads it.
//!
//! Rules, applied to each segment in LSN order:
//! - records are decoded one after the other; each must carry its own position as LSN;
//! - at a bad or incomplete record, scan forward for the next valid record (magic + CRC +
//!   matching LSN). If one exists, the bytes in between are quarantined (copied to
//!   `quarantine/`, reported, counted, skipped by readers). If none exists and this is the
//!   newest segment, it is a torn write from a crash: the file is truncated there and the cut
//!   is reported. In an older segment (which was complete when the next one was created) the
//!   bad tail is quarantined instead;
//! - a segment whose data runs into the next segment's base is an inconsistency that needs an
//!   operator (this WAL never writes one);
//! - every segment file and the directory are fsynced, so records that a killed process wrote
//!   but had not yet fsynced become durable before a reader can hand them to the database
//!   (otherwise a later power loss could lose rows whose LSNs the database already checkpointed,
//!   and the LSNs would be reused).

use std::fs::OpenOptions;
use std::io::Read;
use std::path::{Path, PathBuf};

use tracing::{info, warn};

use super::record::{self, Decoded};
use super::{quarantine, segment, Lsn, WalError};

/// What `Wal::open` found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// The directory had no WAL yet; a new identity was created.
    pub created: bool,
    /// Segment files found.
    pub segments: usize,
    /// Valid records found.
    pub records: u64,
    /// LSN of the oldest valid record on disk.
    pub first_lsn: Option<Lsn>,
    /// LSN of the newest valid record on disk.
    pub last_lsn: Option<Lsn>,
    /// The LSN the next append will get.
    pub next_lsn: Lsn,
    /// A torn tail cut off the newest segment, if any.
    pub torn_tail: Option<TornTail>,
    /// Corrupt ranges moved aside (found now or on an earlier open).
    pub quarantined: Vec<QuarantinedRange>,
}

/// Bytes cut from the end of the newest segment (a write interrupted by a crash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    /// The segment file.
    pub segment: PathBuf,
    /// Offset in the file where the cut was made (its new length).
    pub offset: u64,
    /// Number of bytes removed.
    pub bytes_cut: u64,
}

/// A corrupt byte range that readers skip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuarantinedRange {
    /// The segment file.
    pub segment: PathBuf,
    /// Offset of the range in the segment.
    pub offset: u64,
    /// LSN of the first bad byte.
    pub lsn: Lsn,
    /// Length of the range in bytes.
    pub len: u64,
    /// The copy in `quarantine/`.
    pub file: PathBuf,
    /// False if an earlier open had already quarantined it.
    pub newly_quarantined: bool,
    /// What was wrong with the first bad record.
    pub reason: String,
}

/// The log as recovery leaves it.
#[derive(Debug)]
pub(crate) struct Recovered {
    pub report: RecoveryReport,
    /// `(base, end)` of each segment: `end` is the LSN just past its last valid byte.
    pub segments: Vec<(Lsn, Lsn)>,
    /// Quarantined `(start, end)` LSN ranges.
    pub skips: Vec<(Lsn, Lsn)>,
    /// Sequence number for the next append.
    pub next_seq: u64,
    /// Sequence number and append time of the oldest valid record.
    pub oldest: Option<(u64, u64)>,
}

fn read_all(path: &Path) -> Result<Vec<u8>, WalError> {
    let mut buf = Vec::new();
    std::fs::File::open(path)
        .and_then(|mut f| f.read_to_end(&mut buf))
        .map_err(|e| WalError::io("read segment", path, e))?;
    Ok(buf)
}

fn describe(decoded: &Decoded) -> String {
    match decoded {
        Decoded::Bad(bad) => bad.to_string(),
        Decoded::Incomplete { needed } => format!("incomplete record (needs {needed} bytes)"),
        Decoded::Record(_) => "valid".into(),
    }
}

/// Scans and repairs the segments of `dir` (as listed by `segment::list`).
pub(crate) fn recover(dir: &Path, files: &[(Lsn, PathBuf)]) -> Result<Recovered, WalError> {
    let mut out = Recovered {
        report: RecoveryReport {
            segments: files.len(),
            ..RecoveryReport::default()
        },
        segments: Vec::with_capacity(files.len()),
        skips: Vec::new(),
        next_seq: 1,
        oldest: None,
    };
    for (i, (base, path)) in files.iter().enumerate() {
        let base = *base;
        let newest = i + 1 == files.len();
        let buf = read_all(path)?;
        let mut pos = 0usize;
        let mut end = buf.len();
        while pos < buf.len() {
            let decoded = record::decode(&buf[pos..], base + pos as u64);
            if let Decoded::Record(h) = decoded {
                if out.oldest.is_none() {
                    out.oldest = Some((h.seq, h.appended_us));
                }
                out.report.records += 1;
                out.report.first_lsn.get_or_insert(h.lsn);
                out.report.last_lsn = Some(h.lsn);
                out.next_seq = out.next_seq.max(h.seq + 1);
                pos += h.framed_len() as usize;
                continue;
            }
            let reason = describe(&decoded);
            match record::find_next_valid(&buf, pos, base) {
                None if newest => {
                    cut_tail(path, pos as u64)?;
                    warn!(segment = %path.display(), offset = pos, bytes_cut = buf.len() - pos, %reason,
                        "WAL recovery cut a torn tail (a write interrupted by a crash; never acknowledged)");
                    out.report.torn_tail = Some(TornTail {
                        segment: path.clone(),
                        offset: pos as u64,
                        bytes_cut: (buf.len() - pos) as u64,
                    });
                    end = pos;
                    break;
                }
                next => {
                    let stop = next.unwrap_or(buf.len());
                    let (file, newly) = quarantine::save(dir, base, pos as u64, &buf[pos..stop])?;
                    warn!(segment = %path.display(), offset = pos, len = stop - pos, file = %file.display(),
                        new = newly, %reason, "WAL recovery quarantined a corrupt range");
                    out.skips.push((base + pos as u64, base + stop as u64));
                    out.report.quarantined.push(QuarantinedRange {
                        segment: path.clone(),
                        offset: pos as u64,
                        lsn: base + pos as u64,
                        len: (stop - pos) as u64,
                        file,
                        newly_quarantined: newly,
                        reason,
                    });
                    pos = stop;
                }
            }
        }
        let end_lsn = base + end as u64;
        if let Some((next_base, next_path)) = files.get(i + 1) {
            if *next_base < end_lsn {
                return Err(WalError::Inconsistent {
                    path: next_path.clone(),
                    reason: format!(
                        "segment starts at LSN {next_base} but {} holds data up to LSN {end_lsn}; \
                         one of them was not written by this WAL: move the wrong one out",
                        path.display()
                    ),
                });
            }
        }
        OpenOptions::new()
            .write(true)
            .open(path)
            .and_then(|f| f.sync_all())
            .map_err(|e| WalError::io("fsync segment", path, e))?;
        out.segments.push((base, end_lsn));
    }
    segment::sync_dir(dir)?;
    out.report.next_lsn = out.segments.last().map_or(0, |(_, end)| *end);
    info!(
        segments = out.report.segments,
        records = out.report.records,
        next_lsn = out.report.next_lsn,
        quarantined = out.report.quarantined.len(),
        torn_tail = out.report.torn_tail.is_some(),
        "WAL recovered"
    );
    Ok(out)
}

fn cut_tail(path: &Path, len: u64) -> Result<(), WalError> {
    OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|f| {
            f.set_len(len)?;
            f.sync_all()
        })
        .map_err(|e| WalError::io("truncate torn tail of", path, e))
}
