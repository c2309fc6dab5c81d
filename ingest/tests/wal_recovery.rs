//! Recovery on real files: torn tails are cut, corrupt middles are quarantined, never returned.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use ingest::wal::{Lsn, Wal, WalOptions, WalReader};

const HEADER: u64 = 36;

fn payload(i: usize) -> Bytes {
    Bytes::from(format!("position-{i:04}-{}", "x".repeat(60)))
}

fn segments(dir: &Path) -> Vec<(Lsn, PathBuf)> {
    let mut out: Vec<(Lsn, PathBuf)> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let e = e.unwrap();
            let name = e.file_name().into_string().unwrap();
            let base = u64::from_str_radix(name.strip_suffix(".seg")?, 16).unwrap();
            Some((base, e.path()))
        })
        .collect();
    out.sort();
    out
}

/// The segment file holding `lsn` and the offset of `lsn` in it.
fn locate(dir: &Path, lsn: Lsn) -> (PathBuf, u64) {
    let (base, path) = segments(dir)
        .into_iter()
        .rev()
        .find(|(base, _)| *base <= lsn)
        .unwrap();
    (path, lsn - base)
}

async fn write_records(dir: &Path, opts: WalOptions, n: usize) -> Vec<Lsn> {
    let (wal, _) = Wal::open(dir, opts).unwrap();
    let mut lsns = Vec::new();
    for i in 0..n {
        lsns.push(wal.append(payload(i)).await.unwrap());
    }
    wal.close().await.unwrap();
    lsns
}

async fn read_all(reader: &mut WalReader) -> Vec<(Lsn, Bytes)> {
    let mut out = Vec::new();
    loop {
        match tokio::time::timeout(
            std::time::Duration::from_millis(100),
            reader.next_batch(100),
        )
        .await
        {
            Ok(batch) => out.extend(batch.unwrap()),
            Err(_) => return out,
        }
    }
}

fn append_bytes(path: &Path, bytes: &[u8]) {
    let mut f = OpenOptions::new().append(true).open(path).unwrap();
    f.write_all(bytes).unwrap();
}

#[tokio::test]
async fn torn_tail_is_cut_and_reported_and_appends_continue() {
    let dir = tempfile::tempdir().unwrap();
    let lsns = write_records(dir.path(), WalOptions::default(), 5).await;
    let (path, _) = locate(dir.path(), lsns[4]);
    let clean_len = std::fs::metadata(&path).unwrap().len();
    // A partial record: the first 20 bytes of a real frame (valid magic, cut in the header),
    // as a crash in the middle of a write leaves it.
    let head = std::fs::read(&path).unwrap()[..20].to_vec();
    append_bytes(&path, &head);

    let (wal, report) = Wal::open(dir.path(), WalOptions::default()).unwrap();
    let torn = report.torn_tail.clone().expect("torn tail reported");
    assert_eq!(torn.segment, path);
    assert_eq!(torn.offset, clean_len);
    assert_eq!(torn.bytes_cut, 20);
    assert!(report.quarantined.is_empty());
    assert_eq!(report.records, 5);
    assert_eq!(report.next_lsn, lsns[4] + HEADER + payload(4).len() as u64);
    assert_eq!(
        std::fs::metadata(&path).unwrap().len(),
        clean_len,
        "file truncated"
    );

    let mut reader = wal.reader(None);
    let got = read_all(&mut reader).await;
    let expected: Vec<(Lsn, Bytes)> = (0..5).map(|i| (lsns[i], payload(i))).collect();
    assert_eq!(got, expected, "previous records intact");
    let next = wal.append(payload(5)).await.unwrap();
    assert_eq!(next, report.next_lsn);
    assert_eq!(
        reader.next_batch(10).await.unwrap(),
        vec![(next, payload(5))]
    );
    wal.close().await.unwrap();
    drop(wal);
    let (_, report) = Wal::open(dir.path(), WalOptions::default()).unwrap();
    assert!(report.torn_tail.is_none());
    assert_eq!(report.records, 6);
}

#[tokio::test]
async fn torn_tail_with_full_header_and_partial_payload_is_cut() {
    let dir = tempfile::tempdir().unwrap();
    let lsns = write_records(dir.path(), WalOptions::default(), 3).await;
    let (path, offset) = locate(dir.path(), lsns[2]);
    // Re-append the last record's bytes minus its final byte: a complete header whose payload
    // never fully reached the disk.
    let bytes = std::fs::read(&path).unwrap();
    let last = &bytes[offset as usize..];
    append_bytes(&path, &last[..last.len() - 1]);
    let (wal, report) = Wal::open(dir.path(), WalOptions::default()).unwrap();
    assert_eq!(report.torn_tail.unwrap().bytes_cut, last.len() as u64 - 1);
    assert_eq!(report.records, 3);
    let got = read_all(&mut wal.reader(None)).await;
    assert_eq!(got.len(), 3);
}

#[tokio::test]
async fn corrupt_middle_record_is_quarantined_never_returned() {
    let dir = tempfile::tempdir().unwrap();
    let lsns = write_records(dir.path(), WalOptions::default(), 5).await;
    let (path, offset) = locate(dir.path(), lsns[2]);
    let original = std::fs::read(&path).unwrap();
    let bad_len = (lsns[3] - lsns[2]) as usize;
    let f = OpenOptions::new().write(true).open(&path).unwrap();
    f.write_all_at(b"XY", offset + HEADER + 10).unwrap();
    drop(f);

    let (wal, report) = Wal::open(dir.path(), WalOptions::default()).unwrap();
    assert!(report.torn_tail.is_none());
    assert_eq!(report.records, 4);
    assert_eq!(report.quarantined.len(), 1);
    let q = &report.quarantined[0];
    assert_eq!((q.lsn, q.offset, q.len), (lsns[2], offset, bad_len as u64));
    assert!(q.newly_quarantined);
    assert!(q.reason.contains("CRC"), "{}", q.reason);
    // The quarantine file holds the bad bytes and names segment and offset.
    let saved = std::fs::read(&q.file).unwrap();
    assert_eq!(saved.len(), bad_len);
    assert_eq!(
        &saved[..HEADER as usize],
        &original[offset as usize..(offset + HEADER) as usize]
    );
    assert!(q.file.starts_with(dir.path().join("quarantine")));
    assert!(q.file.to_string_lossy().contains(&format!("{offset:016x}")));
    assert_eq!(wal.stats().quarantined, 1);

    let got = read_all(&mut wal.reader(None)).await;
    let expected: Vec<(Lsn, Bytes)> = [0, 1, 3, 4]
        .iter()
        .map(|&i| (lsns[i], payload(i)))
        .collect();
    assert_eq!(
        got, expected,
        "following records still read, the bad one never"
    );
    // Readers that start right before or inside the bad range skip it too.
    let got = read_all(&mut wal.reader(Some(lsns[1]))).await;
    assert_eq!(got[0].0, lsns[3]);
    let got = read_all(&mut wal.reader(Some(lsns[2]))).await;
    assert_eq!(got[0].0, lsns[3]);
    // A database checkpoint at the quarantined record can be released.
    wal.release(lsns[2]).unwrap();
    assert_eq!(wal.stats().unreleased_records, 2);
    let next = wal.append(payload(5)).await.unwrap();
    assert!(next > lsns[4]);
    wal.close().await.unwrap();
    drop(wal);

    // Reopening finds the same range, already quarantined: reported, not duplicated.
    let (wal, report) = Wal::open(dir.path(), WalOptions::default()).unwrap();
    assert_eq!(report.quarantined.len(), 1);
    assert!(!report.quarantined[0].newly_quarantined);
    assert_eq!(wal.stats().quarantined, 1);
    assert_eq!(read_all(&mut wal.reader(None)).await.len(), 5);
}

#[tokio::test]
async fn corrupt_tail_of_an_older_segment_is_quarantined_not_cut() {
    let dir = tempfile::tempdir().unwrap();
    let opts = WalOptions {
        segment_bytes: 1024,
        ..WalOptions::default()
    };
    let lsns = write_records(dir.path(), opts.clone(), 30).await;
    let segs = segments(dir.path());
    assert!(segs.len() >= 3);
    // The last record of the first segment.
    let last_of_first = *lsns.iter().rfind(|l| **l < segs[1].0).unwrap();
    let (path, offset) = locate(dir.path(), last_of_first);
    let len_before = std::fs::metadata(&path).unwrap().len();
    let f = OpenOptions::new().write(true).open(&path).unwrap();
    f.write_all_at(&[0xFF], offset).unwrap(); // break its magic
    drop(f);

    let (wal, report) = Wal::open(dir.path(), opts).unwrap();
    assert!(report.torn_tail.is_none());
    assert_eq!(report.quarantined.len(), 1);
    assert_eq!(report.quarantined[0].lsn, last_of_first);
    assert_eq!(
        std::fs::metadata(&path).unwrap().len(),
        len_before,
        "older segment not cut"
    );
    let got: Vec<Lsn> = read_all(&mut wal.reader(None))
        .await
        .iter()
        .map(|(l, _)| *l)
        .collect();
    let expected: Vec<Lsn> = lsns
        .iter()
        .copied()
        .filter(|l| *l != last_of_first)
        .collect();
    assert_eq!(got, expected);
}

#[tokio::test]
async fn overlapping_segments_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let lsns = write_records(dir.path(), WalOptions::default(), 3).await;
    // A stray segment that starts inside the data of the existing one.
    let stray = dir.path().join(format!("{:016x}.seg", lsns[1]));
    std::fs::write(&stray, b"").unwrap();
    let err = Wal::open(dir.path(), WalOptions::default()).unwrap_err();
    assert!(err.to_string().contains("is inconsistent"), "{err}");
    // Badly named segment files are refused too.
    std::fs::remove_file(&stray).unwrap();
    std::fs::write(dir.path().join("12.seg"), b"").unwrap();
    let err = Wal::open(dir.path(), WalOptions::default()).unwrap_err();
    assert!(err.to_string().contains("16 hex digits"), "{err}");
}
