//! The WAL's identity (a random UUID stored in `wal_id`) and the exclusive directory lock.
//!
//! The database keys its checkpoint by `(wal_id, lsn)`: a wiped or replaced WAL directory gets
//! a new id, so an old checkpoint can never skip records of a new log.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use uuid::Uuid;

use super::{segment, Lsn, WalError};

const ID_FILE: &str = "wal_id";
const LOCK_FILE: &str = "LOCK";

/// Holds an exclusive lock on the WAL directory for as long as it lives.
#[derive(Debug)]
pub struct DirLock {
    // Dropping the file releases the lock.
    _file: File,
}

/// Locks `dir` so that no other process or handle opens the same WAL.
pub fn lock(dir: &Path) -> Result<DirLock, WalError> {
    let path = dir.join(LOCK_FILE);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| WalError::io("create lock file", &path, e))?;
    match file.try_lock() {
        Ok(()) => Ok(DirLock { _file: file }),
        Err(std::fs::TryLockError::WouldBlock) => Err(WalError::Locked {
            path: dir.to_path_buf(),
        }),
        Err(std::fs::TryLockError::Error(e)) => Err(WalError::io("lock", &path, e)),
    }
}

/// Reads the WAL id from `dir`, or creates it when the directory is new.
///
/// `segments` are the segment files found. A new WAL gets its first (empty) segment before
/// its id, so that "id without segments" can only mean segments were deleted from outside
/// (LSNs would start again at 0 under the same id and the database checkpoint would skip new
/// records) and is refused, while a crash between the two steps (one empty segment at LSN 0,
/// no id) is finished here. Returns the id and whether it was created now.
pub fn load_or_create(dir: &Path, segments: &[(Lsn, PathBuf)]) -> Result<(Uuid, bool), WalError> {
    let path = dir.join(ID_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let id = Uuid::parse_str(text.trim()).map_err(|e| WalError::BadIdentity {
                path: path.clone(),
                reason: format!(
                    "not a UUID ({e}); restore it from a backup, or move the whole directory \
                     aside to start a new WAL"
                ),
            })?;
            if segments.is_empty() {
                return Err(WalError::BadIdentity {
                    path,
                    reason: "no segment files although the WAL id exists: LSNs would start again \
                             at 0 and the database checkpoint would skip new records. Restore the \
                             segments, or delete wal_id too to start a new WAL"
                        .into(),
                });
            }
            Ok((id, false))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let fresh = match segments {
                [] => {
                    segment::create(dir, 0)?;
                    true
                }
                [(0, only)] => {
                    std::fs::metadata(only)
                        .map_err(|e| WalError::io("inspect", only, e))?
                        .len()
                        == 0
                }
                _ => false,
            };
            if !fresh {
                return Err(WalError::BadIdentity {
                    path,
                    reason: "missing although segment files exist; without it the database \
                             checkpoint cannot be matched. Restore it, or move the directory \
                             aside to start a new WAL"
                        .into(),
                });
            }
            let id = Uuid::new_v4();
            let tmp = dir.join(format!("{ID_FILE}.tmp"));
            let write = || -> std::io::Result<()> {
                let mut f = File::create(&tmp)?;
                f.write_all(format!("{id}\n").as_bytes())?;
                f.sync_all()?;
                std::fs::rename(&tmp, &path)
            };
            write().map_err(|e| WalError::io("write", &path, e))?;
            segment::sync_dir(dir)?;
            Ok((id, true))
        }
        Err(e) => Err(WalError::io("read", &path, e)),
    }
}
