//! The background re-checks that keep readiness true to the present, traffic or not: once a
//! second the WAL volume is asked whether it can take a record now (free space for the largest
//! record, and a small write that is synced and removed), and while the writer has nothing to
//! do the database is pinged. Every reason then clears by itself once its cause is gone.
//! Also exports `ingest_not_ready{reason}` and the WAL volume's free bytes.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::Pool;
use tracing::{info, warn};

use super::{now_ms, Health, Reason};
use crate::metrics as m;

/// Name of the probe file inside the WAL directory (not a segment: the WAL ignores it).
pub const PROBE_FILE: &str = ".ready-probe";
/// Bytes the probe writes and syncs.
const PROBE_BYTES: usize = 4096;
/// How often everything is re-checked.
const EVERY: Duration = Duration::from_secs(1);
/// The database is pinged once the writer has neither committed nor failed for this long.
const DB_QUIET: i64 = 3_000;
/// Longest a ping may take before the database counts as unreachable.
const PING_TIMEOUT: Duration = Duration::from_secs(3);

/// What the probe looks at.
pub struct Targets {
    /// The WAL directory (its volume is the one that fills).
    pub wal_dir: PathBuf,
    /// Free bytes below which the WAL cannot take its largest record.
    pub min_free_bytes: u64,
    /// The writer's pool (a ping borrows one connection for a moment).
    pub pool: Pool,
}

/// Re-checks until the task is aborted.
pub async fn run(health: Arc<Health>, targets: Targets) {
    let targets = Arc::new(targets);
    let mut tick = tokio::time::interval(EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut wal_failing = false;
    loop {
        tick.tick().await;
        let t = targets.clone();
        let checked =
            tokio::task::spawn_blocking(move || check_wal_volume(&t.wal_dir, t.min_free_bytes))
                .await
                .unwrap_or_else(|e| Err(format!("the WAL check did not run: {e}")));
        match checked {
            Ok(free) => {
                metrics::gauge!(m::WAL_VOLUME_FREE).set(free as f64);
                if wal_failing {
                    info!(free_bytes = free, "the WAL volume takes writes again");
                }
                wal_failing = false;
                health.set_wal_writable(true);
            }
            Err(e) => {
                if !wal_failing {
                    warn!(error = %e, "the WAL volume cannot take a record now; not ready until it can");
                }
                wal_failing = true;
                health.set_wal_writable(false);
            }
        }
        if health.db_quiet_for_ms(now_ms()) >= DB_QUIET {
            ping(&health, &targets.pool).await;
        }
        export(&health);
    }
}

/// Sets `ingest_not_ready{reason}` to 1 for the reasons that hold, 0 for the others.
pub fn export(health: &Health) {
    let now = health.reasons();
    for r in Reason::ALL {
        let v = if now.contains(&r) { 1.0 } else { 0.0 };
        metrics::gauge!(m::NOT_READY, "reason" => r.code()).set(v);
    }
}

async fn ping(health: &Health, pool: &Pool) {
    let result = tokio::time::timeout(PING_TIMEOUT, async {
        let client = pool.get().await.map_err(|e| format!("connect: {e}"))?;
        client
            .simple_query("SELECT 1")
            .await
            .map_err(|e| format!("ping: {e}"))?;
        Ok::<(), String>(())
    })
    .await
    .unwrap_or_else(|_| Err(format!("no answer within {PING_TIMEOUT:?}")));
    match result {
        Ok(()) => {
            let was_up = health.is_db_up();
            health.db_pinged();
            if !was_up && health.is_db_up() {
                info!("database reachable again");
                metrics::gauge!(m::DB_UP).set(1.0);
            }
        }
        Err(e) => {
            if health.is_db_up() {
                warn!(error = %e, "database unreachable; positions stay in the WAL");
            }
            health.db_failed(e);
            metrics::gauge!(m::DB_UP).set(0.0);
        }
    }
}

/// Can the WAL take a record now? Free bytes on its volume when it can.
pub fn check_wal_volume(dir: &Path, min_free_bytes: u64) -> Result<u64, String> {
    let st = nix::sys::statvfs::statvfs(dir)
        .map_err(|e| format!("cannot stat the WAL volume at {}: {e}", dir.display()))?;
    let free = st.blocks_available() as u64 * st.fragment_size() as u64;
    if free < min_free_bytes {
        return Err(format!(
            "{free} bytes free on the WAL volume at {}, the largest record needs {min_free_bytes}",
            dir.display()
        ));
    }
    let path = dir.join(PROBE_FILE);
    let written = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(&path)
        .and_then(|mut f| {
            f.write_all(&[0u8; PROBE_BYTES])?;
            f.sync_data()
        });
    let _ = std::fs::remove_file(&path);
    written.map_err(|e| format!("cannot write and sync {}: {e}", path.display()))?;
    Ok(free)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_writable_directory_passes_and_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let free = check_wal_volume(dir.path(), 1).unwrap();
        assert!(free > 0);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn too_little_free_space_or_no_directory_fails_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let e = check_wal_volume(dir.path(), u64::MAX).unwrap_err();
        assert!(e.contains("bytes free on the WAL volume"), "{e}");
        let e = check_wal_volume(&dir.path().join("missing"), 1).unwrap_err();
        assert!(e.contains("cannot stat"), "{e}");
    }
}
