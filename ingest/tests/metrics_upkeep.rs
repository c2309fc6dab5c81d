//! Histogram samples must not pile up in memory when nobody scrapes `/metrics` (production has
//! no Prometheus by default): the recorder that `ingest::metrics::install` sets up drains them
//! on a timer of its own. Measured with a counting allocator (this test binary only): a
//! million samples hold ~8 MB until drained.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, Instant};

/// Bytes currently allocated by the whole test process.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_add(
                new_size as isize - layout.size() as isize,
                Ordering::Relaxed,
            );
        }
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

#[test]
fn histogram_samples_are_drained_with_no_scrape() {
    // The production recorder, with its production upkeep interval.
    let _handle = ingest::metrics::install().expect("the metrics recorder installs");
    // Register the series first so that its one-time allocations are in the baseline.
    metrics::histogram!(ingest::metrics::ACK_LATENCY).record(0.001);
    let baseline = live();

    const SAMPLES: usize = 1_000_000;
    for i in 0..SAMPLES {
        metrics::histogram!(ingest::metrics::ACK_LATENCY).record((i % 100) as f64 * 1e-4);
    }
    let grown = live() - baseline;
    assert!(
        grown > 4_000_000,
        "recording {SAMPLES} samples should buffer them (grew {grown} bytes): the measurement \
         cannot see the buffer"
    );

    // No one renders the metrics; the upkeep alone must give the memory back. Freed blocks go
    // through epoch-based reclamation, which a few more recordings advance.
    let deadline = Instant::now() + ingest::metrics::UPKEEP_EVERY * 4;
    let mut left = grown;
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        metrics::histogram!(ingest::metrics::ACK_LATENCY).record(0.001);
        left = live() - baseline;
        if left < 1_000_000 {
            break;
        }
    }
    assert!(
        left < 1_000_000,
        "{left} bytes of {grown} still held long after {SAMPLES} histogram samples with no scrape: \
         nothing drains them"
    );
}
