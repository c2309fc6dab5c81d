//! The verdict every durability test and the reboot test share: is every acknowledged
//! position in the database, exactly once?

use std::collections::HashSet;
use std::time::{Duration, Instant};

use super::TestDb;

/// What the database holds compared with what the fleet saw acknowledged.
#[derive(Debug)]
pub struct Verdict {
    pub acked: usize,
    pub stored: usize,
    /// Acknowledged points absent from the database (must be empty).
    pub missing: Vec<(String, i64)>,
    /// Rows stored more than once (must be 0; the unique index forbids it).
    pub duplicates: usize,
}

impl Verdict {
    pub fn is_perfect(&self) -> bool {
        self.missing.is_empty() && self.duplicates == 0
    }
}

/// Waits (up to `timeout`) until every acknowledged point is stored, then compares.
pub async fn acked_in_db(
    db: &TestDb,
    acked: &[fleet::AckedPoint],
    timeout: Duration,
) -> anyhow::Result<Verdict> {
    let expected: HashSet<(String, i64)> = acked
        .iter()
        .map(|p| (p.device_id.clone(), p.time_ms))
        .collect();
    let deadline = Instant::now() + timeout;
    loop {
        let stored = db.stored_points().await?;
        let set: HashSet<(String, i64)> = stored.iter().cloned().collect();
        let missing: Vec<(String, i64)> = expected.difference(&set).cloned().collect();
        if missing.is_empty() || Instant::now() > deadline {
            return Ok(Verdict {
                acked: expected.len(),
                stored: stored.len(),
                duplicates: stored.len() - set.len(),
                missing,
            });
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
