//! Segment files: naming by first LSN, listing, creation and directory fsync.
//!
//! A segment is named after the LSN of its first byte as 16 hex digits plus `.seg`
//! (`00000000040001a4.seg`), so a directory listing sorts in log order.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use super::{Lsn, WalError};

const SUFFIX: &str = ".seg";

/// File name of the segment that starts at `base`.
pub fn file_name(base: Lsn) -> String {
    format!("{base:016x}{SUFFIX}")
}

/// Path of the segment that starts at `base` in `dir`.
pub fn path(dir: &Path, base: Lsn) -> PathBuf {
    dir.join(file_name(base))
}

/// The base LSN encoded in a segment file name, or `None` if it is not one.
pub fn parse_file_name(name: &str) -> Option<Lsn> {
    let hex = name.strip_suffix(SUFFIX)?;
    if hex.len() != 16 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    Lsn::from_str_radix(hex, 16).ok()
}

/// All segment files of `dir`, in LSN order. Other files are left alone.
pub fn list(dir: &Path) -> Result<Vec<(Lsn, PathBuf)>, WalError> {
    let entries = std::fs::read_dir(dir).map_err(|e| WalError::io("list", dir, e))?;
    let mut segments = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| WalError::io("list", dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(base) = parse_file_name(name) {
            segments.push((base, entry.path()));
        } else if name.ends_with(SUFFIX) {
            return Err(WalError::Inconsistent {
                path: entry.path(),
                reason:
                    "a .seg file whose name is not 16 hex digits; move it out of the WAL directory"
                        .into(),
            });
        }
    }
    segments.sort_by_key(|(base, _)| *base);
    Ok(segments)
}

/// Makes creations, renames and deletions inside `dir` durable.
pub fn sync_dir(dir: &Path) -> Result<(), WalError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| WalError::io("fsync directory", dir, e))
}

/// Creates (or empties) the segment starting at `base` and makes its directory entry durable.
///
/// Emptying an existing file is safe: a file named after the current end of the log can only
/// hold bytes that were never acknowledged (a previous attempt that failed half way).
pub fn create(dir: &Path, base: Lsn) -> Result<File, WalError> {
    let path = path(dir, base);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .map_err(|e| WalError::io("create segment", &path, e))?;
    sync_dir(dir)?;
    Ok(file)
}

/// Opens an existing segment for appending at its end.
pub fn open_for_append(dir: &Path, base: Lsn) -> Result<File, WalError> {
    let path = path(dir, base);
    OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .map_err(|e| WalError::io("open segment", &path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_sort() {
        assert_eq!(file_name(0x1a4), "00000000000001a4.seg");
        assert_eq!(parse_file_name("00000000000001a4.seg"), Some(0x1a4));
        assert_eq!(parse_file_name(&file_name(u64::MAX)), Some(u64::MAX));
        assert_eq!(parse_file_name("1a4.seg"), None);
        assert_eq!(parse_file_name("000000000000zzzz.seg"), None);
        assert_eq!(parse_file_name("00000000000001a4.tmp"), None);
        assert!(file_name(9) < file_name(10));
    }
}
