//! Property test: random sequences of appends, simulated crashes (the newest segment cut at a
//! random byte inside records that were still in flight), reopens and releases. Invariant:
//! every acknowledged record is read back exactly once, in LSN order, unless released; no
//! record that was never written is ever returned.

use std::collections::BTreeMap;
use std::path::Path;

use bytes::Bytes;
use ingest::wal::{Lsn, Wal, WalOptions};
use proptest::prelude::*;

const HEADER: u64 = 36;

#[derive(Debug, Clone)]
enum Op {
    /// Appends records of these payload sizes concurrently; all are acknowledged.
    Append(Vec<usize>),
    /// Appends records "in flight" (their acks are ignored), then crashes: the newest segment
    /// is cut at a random byte at or after the first in-flight record.
    Crash { in_flight: Vec<usize>, cut: f64 },
    /// Clean close and reopen.
    Reopen,
    /// Releases up to a record chosen among the unreleased ones.
    Release(f64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => prop::collection::vec(0usize..300, 1..20).prop_map(Op::Append),
        2 => (prop::collection::vec(0usize..300, 1..10), 0.0f64..1.0)
            .prop_map(|(in_flight, cut)| Op::Crash { in_flight, cut }),
        1 => Just(Op::Reopen),
        2 => (0.0f64..1.0).prop_map(Op::Release),
    ]
}

fn opts() -> WalOptions {
    WalOptions {
        segment_bytes: 2048,
        ..WalOptions::default()
    }
}

fn newest_segment(dir: &Path) -> (Lsn, std::path::PathBuf) {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let e = e.unwrap();
            let name = e.file_name().into_string().unwrap();
            let base = u64::from_str_radix(name.strip_suffix(".seg")?, 16).unwrap();
            Some((base, e.path()))
        })
        .max()
        .unwrap()
}

struct Model {
    /// Every record known to be on disk: LSN -> payload.
    records: BTreeMap<Lsn, Bytes>,
    /// Everything at or below this was released.
    released: Option<Lsn>,
    counter: usize,
}

impl Model {
    fn payload(&mut self, size: usize) -> Bytes {
        self.counter += 1;
        let mut p = format!("rec{}-", self.counter).into_bytes();
        p.resize(p.len() + size, b'a' + (self.counter % 26) as u8);
        Bytes::from(p)
    }
}

async fn append_all(wal: &Wal, payloads: Vec<Bytes>) -> Vec<(Lsn, Bytes)> {
    let mut set = tokio::task::JoinSet::new();
    for p in payloads {
        let wal = wal.clone();
        set.spawn(async move { (wal.append(p.clone()).await.unwrap(), p) });
    }
    let mut out = Vec::new();
    while let Some(r) = set.join_next().await {
        out.push(r.unwrap());
    }
    out
}

async fn check(wal: &Wal, model: &Model) -> Result<(), TestCaseError> {
    let mut reader = wal.reader(None);
    let mut seen: BTreeMap<Lsn, Bytes> = BTreeMap::new();
    let mut last: Option<Lsn> = None;
    loop {
        let batch = tokio::time::timeout(
            std::time::Duration::from_millis(30),
            reader.next_batch(1000),
        )
        .await;
        let Ok(batch) = batch else { break };
        for (lsn, bytes) in batch.unwrap() {
            prop_assert!(last < Some(lsn), "order: {lsn} after {last:?}");
            last = Some(lsn);
            prop_assert_eq!(
                model.records.get(&lsn),
                Some(&bytes),
                "unknown or wrong record at {}",
                lsn
            );
            seen.insert(lsn, bytes);
        }
    }
    for lsn in model.records.keys() {
        if model.released.is_none_or(|r| *lsn > r) {
            prop_assert!(
                seen.contains_key(lsn),
                "acknowledged record {} not read back",
                lsn
            );
        }
    }
    Ok(())
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let dir = tempfile::tempdir().unwrap();
        let mut model = Model {
            records: BTreeMap::new(),
            released: None,
            counter: 0,
        };
        let (mut wal, _) = Wal::open(dir.path(), opts()).unwrap();
        for op in ops {
            match op {
                Op::Append(sizes) => {
                    let payloads = sizes.into_iter().map(|s| model.payload(s)).collect();
                    for (lsn, p) in append_all(&wal, payloads).await {
                        prop_assert!(model.records.insert(lsn, p).is_none(), "LSN {} reused", lsn);
                    }
                }
                Op::Crash { in_flight, cut } => {
                    let payloads = in_flight.into_iter().map(|s| model.payload(s)).collect();
                    let mut flying = append_all(&wal, payloads).await;
                    flying.sort_by_key(|(l, _)| *l);
                    wal.close().await.unwrap();
                    drop(wal);
                    let (base, path) = newest_segment(dir.path());
                    let file_len = std::fs::metadata(&path).unwrap().len();
                    let lower = flying[0].0.max(base);
                    let end = base + file_len;
                    let cut_lsn = lower + ((end - lower) as f64 * cut) as u64;
                    std::fs::OpenOptions::new()
                        .write(true)
                        .open(&path)
                        .unwrap()
                        .set_len(cut_lsn - base)
                        .unwrap();
                    // Records entirely before the cut survive; the rest never happened.
                    for (lsn, p) in flying {
                        if lsn + HEADER + p.len() as u64 <= cut_lsn {
                            model.records.insert(lsn, p);
                        }
                    }
                    let (reopened, report) = Wal::open(dir.path(), opts()).unwrap();
                    prop_assert!(report.quarantined.is_empty(), "{:?}", report);
                    wal = reopened;
                }
                Op::Reopen => {
                    wal.close().await.unwrap();
                    drop(wal);
                    let (reopened, report) = Wal::open(dir.path(), opts()).unwrap();
                    prop_assert!(report.torn_tail.is_none() && report.quarantined.is_empty());
                    wal = reopened;
                }
                Op::Release(frac) => {
                    let candidates: Vec<Lsn> = model
                        .records
                        .keys()
                        .copied()
                        .filter(|l| model.released.is_none_or(|r| *l > r))
                        .collect();
                    if candidates.is_empty() {
                        continue;
                    }
                    let upto = candidates[((candidates.len() - 1) as f64 * frac) as usize];
                    wal.release(upto).unwrap();
                    model.released = Some(upto);
                    let stats = wal.stats();
                    let unreleased = model.records.keys().filter(|l| **l > upto).count() as u64;
                    prop_assert_eq!(stats.unreleased_records, unreleased);
                }
            }
            check(&wal, &model).await?;
        }
        wal.close().await.unwrap();
        Ok(())
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn acknowledged_records_are_read_exactly_once_unless_released(
        ops in prop::collection::vec(op(), 1..14)
    ) {
        run(ops)?;
    }
}
