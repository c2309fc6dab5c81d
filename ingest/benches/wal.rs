//! WAL append throughput and latency with 1, 100 and 1,000 concurrent appenders of 200-byte
//! records, while a consumer reads and releases like the database writer does.
//!
//! `cargo bench -p ingest --bench wal`. Environment: `WAL_BENCH_SECS` (default 5) per run,
//! `WAL_BENCH_DIR` (default the system temp dir; use a directory on the disk under test).

use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use ingest::wal::{Wal, WalOptions};

fn main() -> anyhow::Result<()> {
    let secs: u64 = std::env::var("WAL_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let base = std::env::var_os("WAL_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    println!(
        "{:>10} {:>12} {:>10} {:>12} {:>10} {:>10} {:>10}",
        "appenders", "records/s", "fsyncs/s", "recs/fsync", "p50 µs", "p99 µs", "max µs"
    );
    for appenders in [1usize, 100, 1000] {
        let dir = tempfile::tempdir_in(&base)?;
        rt.block_on(run(dir.path(), appenders, Duration::from_secs(secs)))?;
    }
    Ok(())
}

async fn run(dir: &std::path::Path, appenders: usize, length: Duration) -> anyhow::Result<()> {
    let (wal, _) = Wal::open(dir, WalOptions::default())?;
    let payload = Bytes::from(vec![b'x'; 200]);
    let deadline = Instant::now() + length;

    // The consumer: read and release, as the database writer would.
    let consumer = {
        let wal = wal.clone();
        tokio::spawn(async move {
            let mut reader = wal.reader(None);
            while let Ok(batch) = reader.next_batch(10_000).await {
                if let Some((last, _)) = batch.last() {
                    wal.release(*last)?;
                }
            }
            anyhow::Ok(())
        })
    };

    let start = Instant::now();
    let mut tasks = Vec::with_capacity(appenders);
    for _ in 0..appenders {
        let wal = wal.clone();
        let payload = payload.clone();
        tasks.push(tokio::spawn(async move {
            let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
            while Instant::now() < deadline {
                let t = Instant::now();
                wal.append(payload.clone()).await?;
                hist.saturating_record(t.elapsed().as_micros() as u64);
            }
            anyhow::Ok(hist)
        }));
    }
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    for task in tasks {
        hist.add(task.await??)?;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let stats = wal.stats();
    wal.close().await?;
    consumer.await??;
    println!(
        "{:>10} {:>12.0} {:>10.0} {:>12.1} {:>10} {:>10} {:>10}",
        appenders,
        stats.appends as f64 / elapsed,
        stats.fsyncs as f64 / elapsed,
        stats.appends as f64 / stats.fsyncs.max(1) as f64,
        hist.value_at_quantile(0.50),
        hist.value_at_quantile(0.99),
        hist.max(),
    );
    Ok(())
}
