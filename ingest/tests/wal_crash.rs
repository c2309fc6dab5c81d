//! Crash test: a child process appends in a loop and prints every acknowledged LSN; the test
//! SIGKILLs it at a random moment, reopens the WAL and checks that every printed LSN is
//! readable with its payload. Repeated over several crashes of the same directory.
//!
//! SIGKILL loses the process but not the page cache, so this proves the process-crash half
//! (nothing acknowledged before the fsync, recovery of whatever the writer left); power loss
//! is covered by the torn-tail and property tests that cut files at arbitrary bytes.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use ingest::wal::{Lsn, Wal, WalOptions};

const CHILD_ENV: &str = "WAL_CRASH_CHILD_DIR";

fn payload(task: usize, i: usize) -> Bytes {
    Bytes::from(format!("t{task}-{i}-{}", "p".repeat(180)))
}

fn opts() -> WalOptions {
    WalOptions {
        segment_bytes: 256 * 1024,
        ..WalOptions::default()
    }
}

/// The child's body: run only by `wal_acked_records_survive_sigkill` through its env var.
#[test]
#[ignore = "run as a child process by wal_acked_records_survive_sigkill"]
fn child_append_loop() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        panic!("{CHILD_ENV} not set: this test only runs as a child of the crash test");
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let (wal, _) = Wal::open(std::path::Path::new(&dir), opts()).unwrap();
        let mut tasks = Vec::new();
        for task in 0..64 {
            let wal = wal.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0.. {
                    let lsn = wal.append(payload(task, i)).await.unwrap();
                    println!("ACK {lsn} {task} {i}");
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
}

fn random_ms(max: u64) -> u64 {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    nanos % max
}

/// Runs the child until it has acknowledged some records, kills it, returns its acks.
fn run_and_kill(dir: &std::path::Path) -> Vec<(Lsn, usize, usize)> {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "child_append_loop",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let collector = std::thread::spawn(move || {
        let mut acks = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let Some(at) = line.find("ACK ") else {
                continue;
            };
            let mut parts = line[at + 4..].split(' ');
            let (Some(l), Some(t), Some(i)) = (parts.next(), parts.next(), parts.next()) else {
                continue; // a line cut by the kill
            };
            let (Ok(l), Ok(t), Ok(i)) = (l.parse(), t.parse(), i.parse()) else {
                continue;
            };
            acks.push((l, t, i));
            if acks.len() == 500 {
                let _ = tx.send(());
            }
        }
        acks
    });
    // Wait for some acknowledgements, then kill at a random moment.
    let started = Instant::now();
    while rx.recv_timeout(Duration::from_millis(100)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "child acknowledged nothing"
        );
    }
    std::thread::sleep(Duration::from_millis(random_ms(400)));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    collector.join().unwrap()
}

#[tokio::test]
async fn wal_acked_records_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let mut all_acked: HashMap<Lsn, Bytes> = HashMap::new();
    let mut previous_max: Option<Lsn> = None;
    for round in 0..3 {
        let acks = run_and_kill(dir.path());
        assert!(acks.len() >= 500, "round {round}: {} acks", acks.len());
        let min = acks.iter().map(|a| a.0).min().unwrap();
        if let Some(prev) = previous_max {
            assert!(
                min > prev,
                "round {round}: LSN {min} reused (previous max {prev})"
            );
        }
        previous_max = acks.iter().map(|a| a.0).max();
        for (lsn, task, i) in acks {
            assert!(
                all_acked.insert(lsn, payload(task, i)).is_none(),
                "LSN {lsn} acked twice"
            );
        }

        let (wal, report) = Wal::open(dir.path(), opts()).unwrap();
        assert!(report.quarantined.is_empty(), "{report:?}");
        let mut reader = wal.reader(None);
        let mut on_disk: HashMap<Lsn, Bytes> = HashMap::new();
        let mut last = None;
        loop {
            let batch =
                tokio::time::timeout(Duration::from_millis(200), reader.next_batch(10_000)).await;
            let Ok(batch) = batch else { break };
            for (lsn, bytes) in batch.unwrap() {
                assert!(last < Some(lsn), "LSN order");
                last = Some(lsn);
                on_disk.insert(lsn, bytes);
            }
        }
        for (lsn, expected) in &all_acked {
            assert_eq!(
                on_disk.get(lsn),
                Some(expected),
                "round {round}: acked LSN {lsn} lost"
            );
        }
        wal.close().await.unwrap();
    }
}
