//! Running out of disk or descriptors, provoked for real on the real process: the WAL on a small
//! tmpfs filled by another file under load and then freed, and the ingest under an open-files
//! limit of 256 facing 300 trackers. The service degrades, says why, recovers by itself, and
//! loses nothing it acknowledged.
//!
//! Mounting a tmpfs needs root (CI runs as root).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use accoreboot_edge::harness::verify::acked_in_db;
use accoreboot_edge::harness::{quick_fleet, wait_until, Ingest, IngestOptions, TestDb};

fn opts(url: &str, wal: PathBuf, extra: &[&str]) -> IngestOptions {
    let mut args: Vec<String> = vec!["--batch-linger".into(), "50ms".into()];
    args.extend(extra.iter().map(|s| s.to_string()));
    IngestOptions {
        database_url: url.to_string(),
        wal_dir: wal,
        args,
        allow_anonymous: true,
    }
}

/// A tmpfs of `size` mounted on `at`, unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(at).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "mounting a tmpfs needs root (CI runs as root): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs(at.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Another program that keeps the volume full: it writes `path` until the volume is full, and
/// tops it up whenever space appears (the WAL deletes segments it wrote to the database), until
/// dropped; then the file is deleted and the space comes back.
struct Filler {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    path: PathBuf,
}

impl Filler {
    fn start(path: PathBuf) -> Filler {
        use std::io::Write;
        use std::sync::atomic::Ordering;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut f = std::fs::File::create(&path).unwrap();
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let chunk = vec![0xA5u8; 64 * 1024];
            while !flag.load(Ordering::Relaxed) {
                while let Ok(n) = f.write(&chunk) {
                    if n == 0 {
                        break;
                    }
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        Filler {
            stop,
            thread: Some(thread),
            path,
        }
    }

    /// Stops topping up and deletes the file.
    fn free(mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
        std::fs::remove_file(&self.path).unwrap();
    }
}

fn readyz(ingest: &Ingest) -> (u16, String) {
    ingest.http_get("/readyz").unwrap_or((0, String::new()))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_wal_volume_turns_readiness_off_and_back_on_by_itself() {
    let db = TestDb::create().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    // The WAL directory is the mount point (the process log, beside it, stays off the volume).
    let volume = Tmpfs::mount(&dir.path().join("wal"), "48m");
    let wal = volume.0.clone();
    let ingest = Ingest::start(opts(
        &db.url,
        wal,
        &["--wal-budget", "32MiB", "--wal-segment-size", "4MiB"],
    ))
    .unwrap();
    ingest.wait_ready(Duration::from_secs(30)).unwrap();
    let fleet = fleet::Fleet::start(quick_fleet(ingest.mqtt_port, "full-", 50, 20.0)).unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;

    // Another file takes the whole volume.
    let filler = Filler::start(volume.0.join("filler"));
    let not_ready = wait_until(Duration::from_secs(10), || readyz(&ingest).0 == 503).await;
    assert!(
        not_ready.is_some(),
        "/readyz never said the WAL volume is full: {:?}",
        readyz(&ingest)
    );
    // What it says while full (checked below, after the recovery).
    let gauge_while_full = wait_until(Duration::from_secs(5), || {
        ingest.metric("ingest_not_ready{reason=\"wal_unwritable\"}") == 1.0
    })
    .await;
    let body_while_full = readyz(&ingest).1;

    // No traffic at all from here on: the trackers go away, then the space comes back.
    let report = fleet.stop(Duration::from_secs(3)).await;
    filler.free();
    let back = wait_until(Duration::from_secs(10), || readyz(&ingest).0 == 200).await;
    println!("time to ready after the space came back, with no traffic: {back:?}");
    assert!(
        back.is_some_and(|d| d <= Duration::from_secs(5)),
        "/readyz not 200 within 5 s of the space coming back: {:?}",
        readyz(&ingest)
    );
    assert!(
        body_while_full.contains("wal_unwritable"),
        "while full: {body_while_full}"
    );
    assert!(
        gauge_while_full.is_some(),
        "ingest_not_ready{{reason=\"wal_unwritable\"}} never 1 while full"
    );
    let gauge = wait_until(Duration::from_secs(5), || {
        ingest.metric("ingest_not_ready{reason=\"wal_unwritable\"}") == 0.0
    })
    .await;
    assert!(
        gauge.is_some(),
        "ingest_not_ready{{reason=\"wal_unwritable\"}} never back to 0"
    );

    // And it takes positions again.
    let mut cfg = quick_fleet(ingest.mqtt_port, "after-", 10, 20.0);
    cfg.max_points = Some(20);
    let after = fleet::Fleet::start(cfg).unwrap();
    after.wait_all_acked(Duration::from_secs(30)).await.unwrap();
    let after = after.stop(Duration::from_secs(5)).await;

    let mut acked = report.acked;
    acked.extend(after.acked);
    let v = acked_in_db(&db, &acked, Duration::from_secs(60))
        .await
        .unwrap();
    println!(
        "acknowledged {} (while full: {} unacknowledged, kept by the trackers), stored {}",
        v.acked,
        report.unacked.len(),
        v.stored
    );
    assert!(v.is_perfect(), "{v:?}");
    drop(ingest);
    db.drop_now().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn more_trackers_than_descriptors_keeps_the_writer_http_and_logs_working() {
    let db = TestDb::create().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ingest =
        Ingest::start_with_open_files_limit(opts(&db.url, dir.path().join("wal"), &[]), 256)
            .unwrap();
    ingest.wait_ready(Duration::from_secs(30)).unwrap();

    let crowd = fleet::Fleet::start(quick_fleet(ingest.mqtt_port, "crowd-", 300, 10.0)).unwrap();
    // Let the crowd take every descriptor it can.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let log_before = ingest.log().lines().count();
    let rows_before = ingest.metric("ingest_db_rows_total{table=\"positions\"}");
    let window = Duration::from_secs(6);
    tokio::time::sleep(window).await;
    // The operator can see: /metrics answers, and says why /readyz fails.
    let (status, _) = ingest.http_get("/metrics").unwrap();
    assert_eq!(status, 200);
    let rows_after = ingest.metric("ingest_db_rows_total{table=\"positions\"}");
    let log_lines = ingest.log().lines().count() - log_before;
    let connected = crowd.stats().connected();
    println!(
        "saturated: {connected} of 300 trackers in, {} rows written in {window:?}, {log_lines} log lines, open fds {}",
        rows_after - rows_before,
        ingest.metric("process_open_fds")
    );
    assert!(
        rows_after > rows_before,
        "no row reached the database while the crowd stayed"
    );
    assert!(
        (log_lines as f64) < 3.0 * window.as_secs_f64(),
        "{log_lines} log lines in {window:?}:\n{}",
        ingest.log()
    );
    // ... and says why.
    assert_eq!(ingest.metric("process_max_fds"), 256.0);
    assert_eq!(
        ingest.metric("ingest_not_ready{reason=\"descriptors_low\"}"),
        1.0,
        "{:?}",
        readyz(&ingest)
    );
    assert!(ingest.metric("ingest_mqtt_accept_pauses_total") >= 1.0);
    let crowd = crowd.stop(Duration::from_secs(3)).await;

    // A second wave right after the crowd left.
    let mut cfg = quick_fleet(ingest.mqtt_port, "wave-", 40, 20.0);
    cfg.max_points = Some(1);
    let started = Instant::now();
    let wave = fleet::Fleet::start(cfg).unwrap();
    wave.wait_all_acked(Duration::from_secs(30)).await.unwrap();
    let took = started.elapsed();
    println!("second wave of 40 trackers acknowledged in {took:?}");
    assert!(
        took <= Duration::from_secs(2),
        "the second wave took {took:?} to be acknowledged"
    );
    let wave = wave.stop(Duration::from_secs(5)).await;
    let ready = wait_until(Duration::from_secs(5), || readyz(&ingest).0 == 200).await;
    assert!(ready.is_some(), "not ready again: {:?}", readyz(&ingest));

    let mut acked = crowd.acked;
    acked.extend(wave.acked);
    let v = acked_in_db(&db, &acked, Duration::from_secs(60))
        .await
        .unwrap();
    assert!(v.is_perfect(), "{v:?}");
    drop(ingest);
    db.drop_now().await.unwrap();
}
