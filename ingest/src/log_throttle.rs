//! Bounded logs on hot error paths: an event that can repeat thousands of times a second (a
//! failed accept, a refused append, a refused login) is written at most once per interval,
//! with the number of events since the last line. The exact counts are in `/metrics`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One throttled log line.
#[derive(Debug)]
pub struct Throttle {
    every: Duration,
    /// When the last line was written (`None`: never).
    last: Mutex<Option<Instant>>,
    /// Events since the last line, this one excluded.
    pending: AtomicU64,
}

impl Throttle {
    pub const fn new(every: Duration) -> Throttle {
        Throttle {
            every,
            last: Mutex::new(None),
            pending: AtomicU64::new(0),
        }
    }

    /// Records an event. `Some(n)` when a line may be written now: `n` events (this one
    /// included) happened since the previous line. `None`: stay quiet, it is counted.
    pub fn hit(&self) -> Option<u64> {
        let now = Instant::now();
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        match *last {
            Some(t) if now.duration_since(t) < self.every => {
                self.pending.fetch_add(1, Ordering::Relaxed);
                None
            }
            _ => {
                *last = Some(now);
                Some(self.pending.swap(0, Ordering::Relaxed) + 1)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_interval_with_the_count() {
        let t = Throttle::new(Duration::from_millis(200));
        assert_eq!(t.hit(), Some(1), "the first event is written");
        let quiet = (0..1000).filter_map(|_| t.hit()).count();
        assert_eq!(quiet, 0, "the rest of the interval stays quiet");
        std::thread::sleep(Duration::from_millis(250));
        assert_eq!(t.hit(), Some(1001), "the next line carries the count");
        assert_eq!(t.hit(), None);
    }
}
