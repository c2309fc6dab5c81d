//! The `quarantine/` directory: corrupt byte ranges copied aside for an operator to inspect.
//!
//! A range found at byte `offset` of segment `base` is saved as
//! `quarantine/<base as 16 hex>-<offset as 16 hex>.bad`, holding exactly the bad bytes. The
//! segment itself is never rewritten: every open finds the same range again, recognises the
//! existing file, and the reader skips the range. Deleting a `.bad` file only makes the next
//! open write it again while its segment exists.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::{segment, Lsn, WalError};

const DIR: &str = "quarantine";

/// The quarantine directory of the WAL in `wal_dir`.
pub fn dir(wal_dir: &Path) -> PathBuf {
    wal_dir.join(DIR)
}

/// File name for a bad range at `offset` inside the segment starting at `base`.
pub fn file_name(base: Lsn, offset: u64) -> String {
    format!("{base:016x}-{offset:016x}.bad")
}

/// Saves `bytes` as the quarantine file of this range (durably) unless it already exists.
/// Returns the file's path and whether it was written now.
pub fn save(
    wal_dir: &Path,
    base: Lsn,
    offset: u64,
    bytes: &[u8],
) -> Result<(PathBuf, bool), WalError> {
    let qdir = dir(wal_dir);
    let path = qdir.join(file_name(base, offset));
    if path.exists() {
        return Ok((path, false));
    }
    std::fs::create_dir_all(&qdir).map_err(|e| WalError::io("create", &qdir, e))?;
    let tmp = path.with_extension("tmp");
    let write = || -> std::io::Result<()> {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)
    };
    write().map_err(|e| WalError::io("write quarantine file", &path, e))?;
    segment::sync_dir(&qdir)?;
    segment::sync_dir(wal_dir)?;
    Ok((path, true))
}

/// Number of quarantined ranges on disk.
pub fn count(wal_dir: &Path) -> Result<u64, WalError> {
    let qdir = dir(wal_dir);
    let entries = match std::fs::read_dir(&qdir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(WalError::io("list", &qdir, e)),
    };
    let mut n = 0;
    for entry in entries {
        let entry = entry.map_err(|e| WalError::io("list", &qdir, e))?;
        if entry.path().extension().is_some_and(|ext| ext == "bad") {
            n += 1;
        }
    }
    Ok(n)
}
