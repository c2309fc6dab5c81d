//! Real I/O failures: a child process lowers its file-size limit (RLIMIT_FSIZE) so that a
//! group commit's write is cut short and fails with EFBIG, as ENOSPC would. The failed appends
//! must get an error (never an LSN), the WAL must truncate the partial bytes away, later
//! appends must work again, and after a reopen exactly the acknowledged records are there.
//!
//! The limit applies to the whole process, so it is set in a child (this binary run again),
//! whose stdout is a pipe and not subject to it.

use std::collections::BTreeMap;
use std::process::Command;

use bytes::Bytes;
use ingest::wal::{Lsn, Wal, WalError, WalOptions};

const CHILD_ENV: &str = "WAL_IO_FAILURE_CHILD_DIR";

fn payload(i: usize) -> Bytes {
    Bytes::from(format!("{i:05}-{}", "f".repeat(200)))
}

fn set_file_size_limit(bytes: Option<u64>) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain libc calls with valid pointers.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_FSIZE, &mut limit), 0);
        limit.rlim_cur = bytes.unwrap_or(limit.rlim_max);
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &limit), 0);
    }
}

#[test]
#[ignore = "run as a child process by failed_writes_are_never_acknowledged_and_appends_recover"]
fn child_io_failure() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        panic!("{CHILD_ENV} not set: this test only runs as a child");
    };
    // Without this, exceeding the limit kills the process with SIGXFSZ instead of EFBIG.
    // SAFETY: ignoring a signal has no memory-safety implications.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let dir = std::path::Path::new(&dir);
        let (wal, _) = Wal::open(dir, WalOptions::default()).unwrap();
        for i in 0..10 {
            let lsn = wal.append(payload(i)).await.unwrap();
            println!("ACK {lsn} {i}");
        }
        let durable = wal.stats();
        let segment = dir.join("0000000000000000.seg");
        let len_before = std::fs::metadata(&segment).unwrap().len();
        // Room for about two more records: concurrent appends form batches that cross it.
        set_file_size_limit(Some(len_before + 500));
        let mut set = tokio::task::JoinSet::new();
        for i in 10..60 {
            let wal = wal.clone();
            set.spawn(async move { (i, wal.append(payload(i)).await) });
        }
        let mut failed = 0;
        while let Some(r) = set.join_next().await {
            match r.unwrap() {
                (i, Ok(lsn)) => println!("ACK {lsn} {i}"),
                (i, Err(WalError::Io { source, .. })) => {
                    failed += 1;
                    assert_eq!(
                        source.raw_os_error(),
                        Some(libc::EFBIG),
                        "append {i}: {source}"
                    );
                    println!("FAIL {i}");
                }
                (i, Err(other)) => panic!("append {i}: unexpected error {other}"),
            }
        }
        assert!(failed > 0, "the limit produced no failure");
        let stats = wal.stats();
        assert_eq!(stats.append_failures, failed);
        // The partial bytes of failed batches were truncated away: the file ends at the last
        // durable record.
        let len_now = std::fs::metadata(&segment).unwrap().len();
        assert_eq!(
            len_now,
            stats.last_durable_lsn.unwrap() + 36 + payload(0).len() as u64
        );
        assert!(stats.last_durable_lsn >= durable.last_durable_lsn);

        // The disk "has space again": appends work without reopening.
        set_file_size_limit(None);
        for i in 60..80 {
            let lsn = wal.append(payload(i)).await.unwrap();
            println!("ACK {lsn} {i}");
        }
        wal.close().await.unwrap();
    });
}

#[tokio::test]
async fn failed_writes_are_never_acknowledged_and_appends_recover() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "child_io_failure",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut acked: BTreeMap<Lsn, Bytes> = BTreeMap::new();
    let mut failed = Vec::new();
    for line in stdout.lines() {
        if let Some(at) = line.find("ACK ") {
            let mut parts = line[at + 4..].split(' ');
            let lsn: Lsn = parts.next().unwrap().parse().unwrap();
            let i: usize = parts.next().unwrap().parse().unwrap();
            assert!(
                acked.insert(lsn, payload(i)).is_none(),
                "LSN {lsn} acknowledged twice"
            );
        } else if let Some(at) = line.find("FAIL ") {
            failed.push(payload(
                line[at + 5..].split(' ').next().unwrap().parse().unwrap(),
            ));
        }
    }
    assert!(!failed.is_empty());
    assert_eq!(acked.len() + failed.len(), 80);

    let (wal, report) = Wal::open(dir.path(), WalOptions::default()).unwrap();
    assert!(report.torn_tail.is_none(), "{report:?}");
    assert!(report.quarantined.is_empty(), "{report:?}");
    let mut reader = wal.reader(None);
    let mut read = BTreeMap::new();
    while read.len() < acked.len() {
        for (lsn, bytes) in reader.next_batch(1000).await.unwrap() {
            read.insert(lsn, bytes);
        }
    }
    assert_eq!(
        read, acked,
        "exactly the acknowledged records, nothing of the failed ones"
    );
    let more =
        tokio::time::timeout(std::time::Duration::from_millis(100), reader.next_batch(10)).await;
    assert!(more.is_err(), "unexpected extra records: {more:?}");
}
