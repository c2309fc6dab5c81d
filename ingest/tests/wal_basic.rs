//! WAL behaviour on real files: round trips, concurrency, reopen, release, budget, bad input.

use std::collections::HashSet;
use std::path::Path;

use bytes::Bytes;
use ingest::wal::{Lsn, Wal, WalError, WalOptions, WalReader};

fn payload(i: usize) -> Bytes {
    Bytes::from(format!(
        "{{\"device\":\"d{i}\",\"lat\":48.85,\"lon\":2.35,\"seq\":{i}}}"
    ))
}

fn small_segments() -> WalOptions {
    WalOptions {
        segment_bytes: 1024,
        ..WalOptions::default()
    }
}

fn segment_bases(dir: &Path) -> Vec<Lsn> {
    let mut bases: Vec<Lsn> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            let hex = name.strip_suffix(".seg")?;
            Some(u64::from_str_radix(hex, 16).unwrap())
        })
        .collect();
    bases.sort();
    bases
}

async fn read_n(reader: &mut WalReader, n: usize) -> Vec<(Lsn, Bytes)> {
    let mut out = Vec::new();
    while out.len() < n {
        out.extend(reader.next_batch(n - out.len()).await.unwrap());
    }
    out
}

/// Asserts that nothing more is readable right now.
async fn assert_nothing_more(reader: &mut WalReader) {
    let more =
        tokio::time::timeout(std::time::Duration::from_millis(100), reader.next_batch(10)).await;
    assert!(more.is_err(), "unexpected records: {more:?}");
}

#[tokio::test]
async fn append_then_read_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, report) = Wal::open(dir.path(), WalOptions::default()).unwrap();
    assert!(report.created);
    assert_eq!(report.records, 0);
    let mut lsns = Vec::new();
    for i in 0..3 {
        lsns.push(wal.append(payload(i)).await.unwrap());
    }
    assert!(lsns.windows(2).all(|w| w[0] < w[1]));
    let mut reader = wal.reader(None);
    let got = read_n(&mut reader, 3).await;
    let expected: Vec<(Lsn, Bytes)> = lsns.iter().copied().zip((0..3).map(payload)).collect();
    assert_eq!(got, expected);
    assert_nothing_more(&mut reader).await;

    // An empty payload is a valid record too.
    let empty = wal.append(Bytes::new()).await.unwrap();
    assert_eq!(
        reader.next_batch(10).await.unwrap(),
        vec![(empty, Bytes::new())]
    );

    let stats = wal.stats();
    assert_eq!(stats.appends, 4);
    assert!(stats.fsyncs >= 1 && stats.fsyncs <= 4);
    assert_eq!(stats.unreleased_records, 4);
    assert_eq!(stats.last_durable_lsn, Some(empty));
    assert!(stats.oldest_unreleased_appended_at.is_some());
    let id = wal.id();
    wal.close().await.unwrap();
    drop(wal);
    let (wal, report) = Wal::open(dir.path(), WalOptions::default()).unwrap();
    assert!(!report.created);
    assert_eq!(report.records, 4);
    assert_eq!(wal.id(), id, "the identity survives a reopen");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_concurrent_appenders_get_distinct_lsns_read_once_in_order() {
    const TASKS: usize = 1000;
    const PER_TASK: usize = 5;
    let dir = tempfile::tempdir().unwrap();
    let opts = WalOptions {
        segment_bytes: 64 * 1024, // several segment switches during the test
        ..WalOptions::default()
    };
    let (wal, _) = Wal::open(dir.path(), opts).unwrap();
    let mut reader = wal.reader(None);
    let reading = tokio::spawn(async move { read_n(&mut reader, TASKS * PER_TASK).await });
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let wal = wal.clone();
        tasks.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for i in 0..PER_TASK {
                let p = payload(t * PER_TASK + i);
                acked.push((wal.append(p.clone()).await.unwrap(), p));
            }
            acked
        }));
    }
    let mut acked = Vec::new();
    for task in tasks {
        acked.extend(task.await.unwrap());
    }
    let read = reading.await.unwrap();
    let distinct: HashSet<Lsn> = acked.iter().map(|(l, _)| *l).collect();
    assert_eq!(distinct.len(), TASKS * PER_TASK, "LSNs are distinct");
    assert!(
        read.windows(2).all(|w| w[0].0 < w[1].0),
        "reader returns LSN order"
    );
    acked.sort_by_key(|(l, _)| *l);
    assert_eq!(read, acked, "reader sees every acked record exactly once");
    let stats = wal.stats();
    assert_eq!(stats.appends, (TASKS * PER_TASK) as u64);
    assert!(
        stats.fsyncs < stats.appends,
        "group commit: {} fsyncs for {} appends",
        stats.fsyncs,
        stats.appends
    );
    assert!(segment_bases(dir.path()).len() > 1);
}

#[tokio::test]
async fn reopen_continues_after_given_lsn_and_lsns_keep_increasing() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = Wal::open(dir.path(), small_segments()).unwrap();
    let mut lsns = Vec::new();
    for i in 0..20 {
        lsns.push(wal.append(payload(i)).await.unwrap());
    }
    wal.close().await.unwrap();
    assert!(matches!(
        wal.append(payload(99)).await,
        Err(WalError::Closed)
    ));
    drop(wal);

    let (wal, report) = Wal::open(dir.path(), small_segments()).unwrap();
    assert_eq!(report.records, 20);
    assert_eq!(report.first_lsn, Some(lsns[0]));
    assert_eq!(report.last_lsn, Some(lsns[19]));
    assert!(report.torn_tail.is_none() && report.quarantined.is_empty());
    // Continue exactly after record 6, across segment boundaries.
    let mut reader = wal.reader(Some(lsns[6]));
    let got = read_n(&mut reader, 13).await;
    let expected: Vec<(Lsn, Bytes)> = (7..20).map(|i| (lsns[i], payload(i))).collect();
    assert_eq!(got, expected);
    assert_nothing_more(&mut reader).await;
    // Continue after the very last record: nothing until a new append.
    let mut tail_reader = wal.reader(Some(lsns[19]));
    let next = wal.append(payload(20)).await.unwrap();
    assert!(next > lsns[19]);
    assert_eq!(
        tail_reader.next_batch(10).await.unwrap(),
        vec![(next, payload(20))]
    );

    // Release everything, reopen: LSNs still increase.
    wal.release(next).unwrap();
    assert_eq!(wal.stats().unreleased_bytes, 0);
    assert_eq!(wal.stats().unreleased_records, 0);
    wal.close().await.unwrap();
    drop(wal);
    let (wal, _) = Wal::open(dir.path(), small_segments()).unwrap();
    let after_reopen = wal.append(payload(21)).await.unwrap();
    assert!(after_reopen > next, "{after_reopen} > {next}");
    // The checkpoint `next` is still usable for a reader after the reopen.
    let mut reader = wal.reader(Some(next));
    assert_eq!(
        reader.next_batch(10).await.unwrap(),
        vec![(after_reopen, payload(21))]
    );
    // A reader from a checkpoint whose segment is gone starts at the oldest record after it.
    let mut reader = wal.reader(Some(lsns[2]));
    let first = reader.next_batch(1).await.unwrap();
    assert!(first[0].0 > lsns[2]);
}

#[tokio::test]
async fn release_deletes_only_fully_released_segments_never_the_newest() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = Wal::open(dir.path(), small_segments()).unwrap();
    let mut lsns = Vec::new();
    for i in 0..80 {
        lsns.push(wal.append(payload(i)).await.unwrap());
    }
    let bases = segment_bases(dir.path());
    assert!(bases.len() >= 5, "{bases:?}");
    assert_eq!(wal.stats().segments, bases.len() as u64);
    // Release up to a record in the middle of the third segment.
    let third = bases[2];
    let in_third: Vec<Lsn> = lsns
        .iter()
        .copied()
        .filter(|l| *l >= third && *l < bases[3])
        .collect();
    assert!(in_third.len() >= 2);
    wal.release(in_third[0]).unwrap();
    assert_eq!(segment_bases(dir.path()), bases[2..].to_vec());
    // Releasing up to the last record of a segment deletes it.
    wal.release(*in_third.last().unwrap()).unwrap();
    assert_eq!(segment_bases(dir.path()), bases[3..].to_vec());
    // Releasing an older LSN again is a no-op.
    wal.release(lsns[0]).unwrap();
    assert_eq!(segment_bases(dir.path()), bases[3..].to_vec());
    let stats = wal.stats();
    assert_eq!(stats.segments_deleted, 3);
    let unreleased = lsns
        .iter()
        .filter(|l| **l > *in_third.last().unwrap())
        .count();
    assert_eq!(stats.unreleased_records, unreleased as u64);

    // Release everything: only the newest segment remains.
    wal.release(lsns[79]).unwrap();
    let left = segment_bases(dir.path());
    assert_eq!(left, vec![*bases.last().unwrap()]);
    let stats = wal.stats();
    assert_eq!((stats.unreleased_bytes, stats.unreleased_records), (0, 0));
    assert_eq!(stats.oldest_unreleased_appended_at, None);
    assert_eq!(stats.segments, 1);
    // A reader from the beginning only finds what is still on disk, in order.
    let mut reader = wal.reader(None);
    let got = reader.next_batch(100).await.unwrap();
    assert!(got.iter().all(|(l, _)| *l >= left[0]));
    assert_eq!(got.last().unwrap().0, lsns[79]);
}

#[tokio::test]
async fn budget_refuses_appends_until_release() {
    let dir = tempfile::tempdir().unwrap();
    let framed = 36 + payload(0).len() as u64;
    let opts = WalOptions {
        budget_bytes: framed * 5,
        segment_bytes: 1024,
        ..WalOptions::default()
    };
    let (wal, _) = Wal::open(dir.path(), opts).unwrap();
    let mut acked = Vec::new();
    for i in 0..5 {
        acked.push(wal.append(payload(i)).await.unwrap());
    }
    for _ in 0..3 {
        match wal.append(payload(9)).await {
            Err(WalError::BudgetExceeded {
                unreleased_bytes,
                budget_bytes,
            }) => {
                assert_eq!(budget_bytes, framed * 5);
                assert!(unreleased_bytes >= budget_bytes);
            }
            other => panic!("expected BudgetExceeded, got {other:?}"),
        }
    }
    let stats = wal.stats();
    assert_eq!(stats.budget_rejections, 3);
    assert_eq!(stats.appends, 5);
    // Nothing was written for the refused appends.
    let mut reader = wal.reader(None);
    assert_eq!(read_n(&mut reader, 5).await.len(), 5);
    assert_nothing_more(&mut reader).await;

    wal.release(acked[1]).unwrap();
    let a = wal.append(payload(5)).await.unwrap();
    let b = wal.append(payload(6)).await.unwrap();
    assert!(matches!(
        wal.append(payload(7)).await,
        Err(WalError::BudgetExceeded { .. })
    ));
    assert_eq!(
        reader.next_batch(10).await.unwrap(),
        vec![(a, payload(5)), (b, payload(6))]
    );
}

#[tokio::test]
async fn bad_input_gets_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    for bad in [
        WalOptions {
            segment_bytes: 10,
            ..WalOptions::default()
        },
        WalOptions {
            budget_bytes: 0,
            ..WalOptions::default()
        },
        WalOptions {
            max_record_bytes: 0,
            ..WalOptions::default()
        },
    ] {
        let err = Wal::open(dir.path(), bad).unwrap_err();
        assert!(matches!(err, WalError::InvalidOptions(_)), "{err}");
    }
    let opts = WalOptions {
        max_record_bytes: 100,
        ..WalOptions::default()
    };
    let (wal, _) = Wal::open(dir.path(), opts).unwrap();
    let err = wal.append(Bytes::from(vec![0u8; 101])).await.unwrap_err();
    assert!(
        matches!(err, WalError::RecordTooLarge { len: 101, max: 100 }),
        "{err}"
    );
    assert!(err.to_string().contains("101"));

    // A second open of a directory in use is refused.
    let err = Wal::open(dir.path(), WalOptions::default()).unwrap_err();
    assert!(matches!(err, WalError::Locked { .. }), "{err}");

    let a = wal.append(payload(1)).await.unwrap();
    let b = wal.append(payload(2)).await.unwrap();
    // LSNs that are not records.
    for bad in [a + 1, b + 3] {
        let err = wal.release(bad).unwrap_err();
        assert!(
            matches!(err, WalError::InvalidLsn { lsn, .. } if lsn == bad),
            "{err}"
        );
        let err = wal.reader(Some(bad)).next_batch(1).await.unwrap_err();
        assert!(matches!(err, WalError::InvalidLsn { .. }), "{err}");
    }
    let beyond = b + 10_000;
    let err = wal.release(beyond).unwrap_err();
    assert!(err.to_string().contains("beyond the end"), "{err}");
    assert!(wal.reader(Some(beyond)).next_batch(1).await.is_err());
    // The failed calls changed nothing.
    assert_eq!(
        wal.reader(Some(a)).next_batch(5).await.unwrap(),
        vec![(b, payload(2))]
    );

    // After close: appends and exhausted readers report Closed.
    let mut reader = wal.reader(Some(b));
    wal.close().await.unwrap();
    assert!(matches!(
        wal.append(payload(3)).await,
        Err(WalError::Closed)
    ));
    assert!(matches!(reader.next_batch(1).await, Err(WalError::Closed)));
}

#[tokio::test]
async fn broken_identity_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = Wal::open(dir.path(), WalOptions::default()).unwrap();
    wal.append(payload(1)).await.unwrap();
    wal.close().await.unwrap();
    drop(wal);

    std::fs::write(dir.path().join("wal_id"), "not-a-uuid\n").unwrap();
    let err = Wal::open(dir.path(), WalOptions::default()).unwrap_err();
    assert!(matches!(err, WalError::BadIdentity { .. }), "{err}");
    assert!(err.to_string().contains("not a UUID"), "{err}");

    std::fs::remove_file(dir.path().join("wal_id")).unwrap();
    let err = Wal::open(dir.path(), WalOptions::default()).unwrap_err();
    assert!(
        err.to_string()
            .contains("missing although segment files exist"),
        "{err}"
    );

    // An id without any segment (segments deleted from outside) is refused: LSNs would
    // restart at 0 under the same id.
    std::fs::write(
        dir.path().join("wal_id"),
        "8d3f2c1e-6a4b-4c2d-9e8f-0a1b2c3d4e5f\n",
    )
    .unwrap();
    for base in segment_bases(dir.path()) {
        std::fs::remove_file(dir.path().join(format!("{base:016x}.seg"))).unwrap();
    }
    let err = Wal::open(dir.path(), WalOptions::default()).unwrap_err();
    assert!(
        err.to_string()
            .contains("no segment files although the WAL id exists"),
        "{err}"
    );

    // A fresh directory gets a different identity.
    let other = tempfile::tempdir().unwrap();
    let (a, _) = Wal::open(other.path(), WalOptions::default()).unwrap();
    let third = tempfile::tempdir().unwrap();
    let (b, _) = Wal::open(third.path(), WalOptions::default()).unwrap();
    assert_ne!(a.id(), b.id());
}

#[tokio::test]
async fn reader_behind_a_release_continues_with_what_is_left() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = Wal::open(dir.path(), small_segments()).unwrap();
    let mut lsns = Vec::new();
    for i in 0..60 {
        lsns.push(wal.append(payload(i)).await.unwrap());
    }
    let mut reader = wal.reader(None);
    let first = reader.next_batch(3).await.unwrap();
    assert_eq!(first.len(), 3);
    // The database already has most of it (another reader wrote it): segments go away under
    // this reader's feet.
    wal.release(lsns[50]).unwrap();
    assert!(segment_bases(dir.path())[0] > lsns[3]);
    let mut got = first;
    while got.last().unwrap().0 < lsns[59] {
        got.extend(reader.next_batch(100).await.unwrap());
    }
    assert!(
        got.windows(2).all(|w| w[0].0 < w[1].0),
        "still in LSN order"
    );
    for (lsn, bytes) in &got {
        let i = lsns.iter().position(|l| l == lsn).expect("a real record");
        assert_eq!(bytes, &payload(i));
    }
    for (i, lsn) in lsns.iter().enumerate().skip(51) {
        assert!(
            got.iter().any(|(l, _)| l == lsn),
            "unreleased record {i} read"
        );
    }
    // Reopen: the backlog figures come back from disk.
    let expected_unreleased = wal.stats().unreleased_records;
    assert_eq!(expected_unreleased, 9);
    wal.close().await.unwrap();
    drop(wal);
    let (wal, _) = Wal::open(dir.path(), small_segments()).unwrap();
    let stats = wal.stats();
    // Release is not persisted by the WAL (the database holds the checkpoint): after a reopen
    // everything on disk counts as unreleased until the writer releases its checkpoint again.
    assert!(stats.unreleased_records >= expected_unreleased);
    wal.release(lsns[50]).unwrap();
    assert_eq!(wal.stats().unreleased_records, expected_unreleased);
    assert_eq!(wal.stats().last_durable_lsn, Some(lsns[59]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn next_batch_is_cancel_safe() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = Wal::open(dir.path(), small_segments()).unwrap();
    let writer = {
        let wal = wal.clone();
        tokio::spawn(async move {
            let mut lsns = Vec::new();
            for i in 0..300 {
                lsns.push(wal.append(payload(i)).await.unwrap());
                if i % 50 == 0 {
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                }
            }
            lsns
        })
    };
    let mut reader = wal.reader(None);
    let mut got = Vec::new();
    let mut timeouts = 0;
    while got.len() < 300 {
        // Tiny timeouts drop the future at every possible await point.
        let wait = std::time::Duration::from_micros(50 + (got.len() as u64 % 7) * 100);
        match tokio::time::timeout(wait, reader.next_batch(7)).await {
            Ok(batch) => got.extend(batch.unwrap()),
            Err(_) => timeouts += 1,
        }
    }
    let lsns = writer.await.unwrap();
    let expected: Vec<(Lsn, Bytes)> = lsns.iter().copied().zip((0..300).map(payload)).collect();
    assert_eq!(got, expected);
    assert!(timeouts > 0, "the test never cancelled a read");
}
