//! Crash: a fleet publishes QoS 1 continuously and records every PUBACK while the test kills
//! the ingest process with SIGKILL at random moments and restarts it on the same WAL. The
//! trackers resend what was not acknowledged. At the end every acknowledged position is in the
//! database exactly once.

use std::collections::HashSet;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use accoreboot_edge::harness::{Ingest, IngestOptions, TestDb};

/// A small xorshift generator seeded from the clock; the seed is printed so a failing run can
/// be replayed with CRASH_SEED.
struct Rng(u64);
impl Rng {
    fn new() -> Self {
        let seed = std::env::var("CRASH_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(7)
                    | 1
            });
        eprintln!("crash test seed: CRASH_SEED={seed}");
        Rng(seed)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn millis(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(lo + self.next() % (hi - lo))
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_at_random_moments_loses_no_acknowledged_position() {
    let db = TestDb::create().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut ingest = Ingest::start(IngestOptions {
        database_url: db.url.clone(),
        wal_dir: dir.path().join("wal"),
        args: vec!["--batch-linger".into(), "50ms".into()],
        allow_anonymous: true,
    })
    .unwrap();
    ingest.wait_ready(Duration::from_secs(30)).unwrap();

    let mut cfg = fleet::FleetConfig::new("127.0.0.1", ingest.mqtt_port);
    cfg.devices = 40;
    cfg.rate_per_device = 25.0;
    cfg.points_per_message = 1;
    cfg.prefix = "crash-".into();
    cfg.reconnect_min = Duration::from_millis(50);
    cfg.reconnect_max = Duration::from_millis(500);
    let fleet = fleet::Fleet::start(cfg).unwrap();

    let mut rng = Rng::new();
    for round in 0..4 {
        tokio::time::sleep(rng.millis(300, 1500)).await;
        let acked_before = fleet.stats().acked_points();
        ingest.kill().unwrap();
        eprintln!("round {round}: SIGKILL after {acked_before} acked points");
        tokio::time::sleep(rng.millis(10, 400)).await;
        ingest.restart().unwrap();
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let report = fleet.stop(Duration::from_secs(30)).await;
    assert!(
        report.unacked.is_empty(),
        "{} points never acknowledged after the drain",
        report.unacked.len()
    );
    assert!(
        report.acked.len() > 500,
        "too few points to mean anything: {}",
        report.acked.len()
    );

    // Wait for the writer to catch up, then compare.
    let expected: HashSet<(String, i64)> = report
        .acked
        .iter()
        .map(|p| (p.device_id.clone(), p.time_ms))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    let stored = loop {
        let stored = db.stored_points().await.unwrap();
        if stored.len() >= expected.len() || Instant::now() > deadline {
            break stored;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let stored_set: HashSet<(String, i64)> = stored.iter().cloned().collect();
    assert_eq!(stored.len(), stored_set.len(), "duplicates in the database");
    let missing: Vec<_> = expected.difference(&stored_set).take(5).collect();
    assert!(
        missing.is_empty(),
        "acknowledged but not stored (first 5): {missing:?}\nlog:\n{}",
        ingest.log()
    );
    // Points stored but never acknowledged are allowed (durable, ack lost in the kill), but they
    // must be points the fleet generated.
    let generated: HashSet<(String, i64)> = report
        .acked
        .iter()
        .chain(report.unacked.iter())
        .map(|p| (p.device_id.clone(), p.time_ms))
        .collect();
    assert!(
        stored_set.is_subset(&generated),
        "the database holds points nobody sent"
    );
    drop(ingest);
    db.drop_now().await.unwrap();
}
