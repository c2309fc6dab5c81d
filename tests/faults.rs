//! Faults, each provoked for real: the database stopped under load, dropped and recreated
//! empty, the WAL budget reached, SIGTERM under load, a torn WAL tail and a corrupt record in
//! the middle, and the seed plan's reboot scenario played on one machine. After each, every
//! acknowledged position is in the database exactly once.
//!
//! Tests that stop a database server use a server of their own (`OwnServer`, a separate
//! cluster on its own port), never the shared one.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use accoreboot_edge::harness::verify::acked_in_db;
use accoreboot_edge::harness::{
    free_port, quick_fleet, wait_until, Ingest, IngestOptions, OwnServer, TestDb,
};

fn start(url: &str, wal: PathBuf, extra: &[&str]) -> Ingest {
    let mut args: Vec<String> = vec!["--batch-linger".into(), "50ms".into()];
    args.extend(extra.iter().map(|s| s.to_string()));
    Ingest::start(IngestOptions {
        database_url: url.to_string(),
        wal_dir: wal,
        args,
        allow_anonymous: true,
    })
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn database_stopped_under_load_then_started_loses_nothing() {
    let (server, admin) = OwnServer::start(55441).unwrap();
    let db = TestDb::create_on(&admin).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ingest = start(&db.url, dir.path().join("wal"), &[]);
    ingest.wait_ready(Duration::from_secs(30)).unwrap();
    let fleet = fleet::Fleet::start(quick_fleet(ingest.mqtt_port, "outage-", 20, 20.0)).unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;

    server.stop().unwrap();
    let acked_at_stop = fleet.stats().acked_points();
    // Devices keep being acknowledged from the WAL; /readyz and the metrics show the outage.
    assert!(
        wait_until(Duration::from_secs(20), || ingest.metric("ingest_db_up")
            == 0.0)
        .await
        .is_some(),
        "ingest_db_up never went to 0"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (status, body) = ingest.http_get("/readyz").unwrap();
    assert_eq!(status, 503);
    assert!(body.contains("database"), "{body}");
    assert!(
        fleet.stats().acked_points() > acked_at_stop + 100,
        "acknowledgements stopped during the outage"
    );
    assert!(ingest.metric("ingest_wal_backlog_records") > 0.0);

    server.restart().unwrap();
    assert!(
        wait_until(Duration::from_secs(30), || matches!(
            ingest.http_get("/readyz"),
            Ok((200, _))
        ))
        .await
        .is_some(),
        "never ready again"
    );
    let report = fleet.stop(Duration::from_secs(20)).await;
    assert!(report.unacked.is_empty());
    let v = acked_in_db(&db, &report.acked, Duration::from_secs(60))
        .await
        .unwrap();
    assert!(v.is_perfect(), "{v:?}");
    drop(ingest);
    db.drop_now().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn database_dropped_and_recreated_empty_gets_its_schema_back() {
    let db = TestDb::create().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ingest = start(&db.url, dir.path().join("wal"), &[]);
    ingest.wait_ready(Duration::from_secs(30)).unwrap();
    let fleet = fleet::Fleet::start(quick_fleet(ingest.mqtt_port, "recreate-", 10, 20.0)).unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;

    // Drop and recreate the database under load (what preprod's `db stop|start` does).
    let admin = accoreboot_edge::harness::database_url();
    let (c, conn) = tokio_postgres::connect(&admin, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    c.batch_execute(&format!("DROP DATABASE {} WITH (FORCE)", db.name))
        .await
        .unwrap();
    c.batch_execute(&format!("CREATE DATABASE {}", db.name))
        .await
        .unwrap();
    let recreated_ms = chrono::Utc::now().timestamp_millis();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let report = fleet.stop(Duration::from_secs(20)).await;

    // Points acknowledged after the recreation (with a margin for the batch in flight) are
    // all in the new database; the schema is back.
    let after: Vec<_> = report
        .acked
        .iter()
        .filter(|p| p.time_ms > recreated_ms + 1000)
        .cloned()
        .collect();
    assert!(
        after.len() > 100,
        "too few points after the recreation: {}",
        after.len()
    );
    let v = acked_in_db(&db, &after, Duration::from_secs(60))
        .await
        .unwrap();
    assert!(v.is_perfect(), "{v:?}\n{}", ingest.log());
    let tables: i64 = db
        .client()
        .await
        .unwrap()
        .query_one("SELECT count(*) FROM pg_tables WHERE tablename IN ('positions','device_latest','rejects','devices','ingest_checkpoints')", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(tables, 5);
    drop(ingest);
    db.drop_now().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn wal_budget_stops_acknowledgements_until_the_database_drains_it() {
    let (server, admin) = OwnServer::start(55442).unwrap();
    let db = TestDb::create_on(&admin).await.unwrap();
    server.stop().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ingest = start(
        &db.url,
        dir.path().join("wal"),
        &["--wal-budget", "1MiB", "--wal-segment-size", "64KiB"],
    );
    let mut cfg = quick_fleet(ingest.mqtt_port, "budget-", 20, 100.0);
    cfg.max_points = Some(1500);
    let fleet = fleet::Fleet::start(cfg).unwrap();

    // The backlog reaches the budget: acknowledgements stop, the refusals are counted.
    assert!(
        wait_until(Duration::from_secs(60), || ingest
            .metric("ingest_messages_total{outcome=\"refused_budget\"}")
            > 0.0)
        .await
        .is_some(),
        "the budget was never reached"
    );
    let plateau = fleet.stats().acked_points();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (_, body) = ingest.http_get("/readyz").unwrap();
    assert!(body.contains("budget"), "{body}");
    assert!(
        fleet.stats().acked_points() < plateau + 200,
        "acknowledgements went on past the budget"
    );
    assert!(fleet.stats().acked_points() < 30_000);

    // The database returns: the backlog drains, acknowledgements resume by themselves.
    server.restart().unwrap();
    fleet
        .wait_all_acked(Duration::from_secs(90))
        .await
        .expect("every point acknowledged after the drain");
    let report = fleet.stop(Duration::from_secs(10)).await;
    assert_eq!(report.acked.len(), 30_000);
    let v = acked_in_db(&db, &report.acked, Duration::from_secs(60))
        .await
        .unwrap();
    assert!(v.is_perfect(), "{v:?}");
    drop(ingest);
    db.drop_now().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_under_load_exits_zero_within_the_deadline_and_loses_nothing() {
    let db = TestDb::create().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut ingest = start(
        &db.url,
        dir.path().join("wal"),
        &["--shutdown-deadline", "8s"],
    );
    ingest.wait_ready(Duration::from_secs(30)).unwrap();
    let fleet = fleet::Fleet::start(quick_fleet(ingest.mqtt_port, "term-", 30, 30.0)).unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let t = Instant::now();
    let status = ingest.terminate(Duration::from_secs(20)).unwrap();
    let took = t.elapsed();
    assert!(status.success(), "exit status {status}\n{}", ingest.log());
    assert!(
        took < Duration::from_secs(9),
        "drain took {took:?}, deadline 8s"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let ingest = Ingest::start_on(ingest.opts.clone(), ingest.mqtt_port, ingest.http_port).unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let report = fleet.stop(Duration::from_secs(20)).await;
    assert!(report.unacked.is_empty());
    let v = acked_in_db(&db, &report.acked, Duration::from_secs(60))
        .await
        .unwrap();
    assert!(v.is_perfect(), "{v:?}");
    drop(ingest);
    db.drop_now().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_when_everything_is_written_exits_at_once_without_errors() {
    let db = TestDb::create().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    // The production drain deadline: a clean stop must not wait for it.
    let mut ingest = start(
        &db.url,
        dir.path().join("wal"),
        &["--shutdown-deadline", "20s"],
    );
    ingest.wait_ready(Duration::from_secs(30)).unwrap();
    // Some traffic the writer catches up with, then quiet.
    let mut cfg = quick_fleet(ingest.mqtt_port, "idle-", 10, 50.0);
    cfg.max_points = Some(50);
    let fleet = fleet::Fleet::start(cfg).unwrap();
    fleet.wait_all_acked(Duration::from_secs(30)).await.unwrap();
    let report = fleet.stop(Duration::from_secs(5)).await;
    let v = acked_in_db(&db, &report.acked, Duration::from_secs(30))
        .await
        .unwrap();
    assert!(v.is_perfect(), "{v:?}");

    let t = Instant::now();
    let status = ingest.terminate(Duration::from_secs(25)).unwrap();
    let took = t.elapsed();
    println!("SIGTERM with nothing left to write: exited in {took:?}");
    assert!(status.success(), "exit status {status}\n{}", ingest.log());
    assert!(
        took < Duration::from_secs(1),
        "an idle stop took {took:?}\n{}",
        ingest.log()
    );
    let log = ingest.log();
    assert!(
        !log.lines().any(|l| l.contains("ERROR")),
        "a normal stop logs no error:\n{log}"
    );
    db.drop_now().await.unwrap();
}

/// The newest WAL segment file and the length of its written part (preallocated zeros excluded).
fn newest_segment(wal: &Path) -> (PathBuf, usize) {
    let mut segs: Vec<PathBuf> = std::fs::read_dir(wal)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && p.extension()
                    .map(|e| e == "seg" || e == "wal" || e == "log")
                    .unwrap_or(true)
        })
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .map(|n| {
                    n.chars()
                        .next()
                        .map(|c| c.is_ascii_hexdigit())
                        .unwrap_or(false)
                })
                .unwrap_or(false)
        })
        .collect();
    segs.sort();
    let seg = segs.pop().expect("a WAL segment");
    let bytes = std::fs::read(&seg).unwrap();
    let used = bytes
        .iter()
        .rposition(|b| *b != 0)
        .map(|i| i + 1)
        .unwrap_or(0);
    (seg, used)
}

async fn publish_points(port: u16, device: &str, n: i64) {
    let mut cfg = quick_fleet(port, device, 1, 200.0);
    cfg.max_points = Some(n as u64);
    let fleet = fleet::Fleet::start(cfg).unwrap();
    fleet.wait_all_acked(Duration::from_secs(30)).await.unwrap();
    fleet.stop(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn torn_tail_is_cut_and_corrupt_middle_record_is_quarantined() {
    let db = TestDb::create().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let wal = dir.path().join("wal");
    let nowhere = format!("postgres://x:y@127.0.0.1:{}/none", free_port());

    // 100 points acknowledged into the WAL while the database is unreachable.
    let mut ingest = start(&nowhere, wal.clone(), &[]);
    publish_points(ingest.mqtt_port, "torn-", 100).await;
    assert!(ingest.terminate(Duration::from_secs(30)).unwrap().success());

    // A torn write at the tail: half a record's worth of garbage after the last record.
    let (seg, used) = newest_segment(&wal);
    let mut bytes = std::fs::read(&seg).unwrap();
    bytes.truncate(used);
    bytes.extend_from_slice(&[0xAB; 37]);
    std::fs::write(&seg, &bytes).unwrap();

    let ingest2 = start(&db.url, wal.clone(), &[]);
    ingest2.wait_ready(Duration::from_secs(30)).unwrap();
    let c = db.client().await.unwrap();
    let mut n = 0i64;
    for _ in 0..100 {
        n = c
            .query_one("SELECT count(*) FROM positions", &[])
            .await
            .unwrap()
            .get(0);
        if n == 100 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(n, 100, "every record before the torn tail is written");
    assert!(
        ingest2.log().to_lowercase().contains("torn"),
        "the torn tail is reported:\n{}",
        ingest2.log()
    );
    drop(ingest2);
    drop(ingest);

    // A corrupt record in the middle: 100 more points, then flip bytes in the middle.
    let mut ingest = start(&nowhere, wal.clone(), &[]);
    publish_points(ingest.mqtt_port, "mid-", 100).await;
    assert!(ingest.terminate(Duration::from_secs(30)).unwrap().success());
    let (seg, used) = newest_segment(&wal);
    let mut bytes = std::fs::read(&seg).unwrap();
    // The middle one of the records that carry a `mid-` point (each message is one record).
    let needle = b"mid-000000";
    let hits: Vec<usize> = (0..used.saturating_sub(needle.len()))
        .filter(|&i| &bytes[i..i + needle.len()] == needle)
        .collect();
    assert!(
        hits.len() >= 90,
        "expected ~100 records of the mid- device, found {}",
        hits.len()
    );
    let mid = hits[hits.len() / 2];
    for b in &mut bytes[mid..mid + 8] {
        *b ^= 0x5A;
    }
    std::fs::write(&seg, &bytes).unwrap();

    let ingest3 = start(&db.url, wal.clone(), &[]);
    ingest3.wait_ready(Duration::from_secs(30)).unwrap();
    let mut mids = 0i64;
    for _ in 0..100 {
        mids = c
            .query_one(
                "SELECT count(*) FROM positions WHERE device_id LIKE 'mid-%'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if mids >= 99 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        (98..100).contains(&mids),
        "the corrupt record (one or two neighbours at most) is left out, the rest written: {mids}"
    );
    assert!(
        std::fs::read_dir(wal.join("quarantine"))
            .map(|d| d.count())
            .unwrap_or(0)
            >= 1,
        "quarantine holds the bad bytes"
    );
    assert!(ingest3.metric("ingest_wal_quarantined_records_total") >= 1.0);
    drop(ingest3);
    drop(ingest);
    db.drop_now().await.unwrap();
}

/// The seed plan's "reboot without data loss", on one machine: a fleet publishes at a steady
/// rate while the ingest service and the database are stopped (in both orders) and restarted.
/// `SOAK_SECONDS` makes it a longer soak for manual runs (see docs/guarantees.md).
#[tokio::test(flavor = "multi_thread")]
async fn local_reboot_scenario_loses_nothing() {
    let soak: u64 = std::env::var("SOAK_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let (server, admin) = OwnServer::start(55443).unwrap();
    let db = TestDb::create_on(&admin).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut ingest = start(&db.url, dir.path().join("wal"), &[]);
    ingest.wait_ready(Duration::from_secs(30)).unwrap();
    let fleet = fleet::Fleet::start(quick_fleet(ingest.mqtt_port, "reboot-", 50, 10.0)).unwrap();
    let rounds = if soak > 0 { (soak / 10).max(1) } else { 2 };
    for round in 0..rounds {
        tokio::time::sleep(Duration::from_secs(2)).await;
        if round % 2 == 0 {
            // ingest first, then the database (a host shutdown order)
            assert!(ingest.terminate(Duration::from_secs(30)).unwrap().success());
            server.crash().unwrap();
        } else {
            // the database first, then ingest
            server.crash().unwrap();
            tokio::time::sleep(Duration::from_millis(500)).await;
            ingest.kill().unwrap();
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        server.restart().unwrap();
        ingest = Ingest::start_on(ingest.opts.clone(), ingest.mqtt_port, ingest.http_port).unwrap();
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let report = fleet.stop(Duration::from_secs(30)).await;
    assert!(
        report.unacked.is_empty(),
        "{} never acknowledged",
        report.unacked.len()
    );
    let v = acked_in_db(&db, &report.acked, Duration::from_secs(60))
        .await
        .unwrap();
    eprintln!(
        "reboot scenario: {} acknowledged, {} stored, verdict {}",
        v.acked,
        v.stored,
        if v.is_perfect() { "no loss" } else { "LOSS" }
    );
    assert!(v.is_perfect(), "{v:?}");
    drop(ingest);
    db.drop_now().await.unwrap();
}
