//! Capped exponential reconnect backoff with jitter, so thousands of trackers that lost the
//! broker together do not all knock at the same instant.

use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// Waits between reconnect attempts: doubling from `min` up to `max`, each wait drawn in
/// [base/2, base].
#[derive(Debug)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    base: Duration,
    rng: SmallRng,
}

impl Backoff {
    pub fn new(min: Duration, max: Duration, seed: u64) -> Self {
        Backoff {
            min,
            max: max.max(min),
            base: min,
            rng: SmallRng::seed_from_u64(seed),
        }
    }

    /// The next wait; grows until `max`.
    pub fn next_wait(&mut self) -> Duration {
        let base = self.base;
        self.base = (self.base * 2).min(self.max);
        let half = base / 2;
        half + self.rng.random_range(Duration::ZERO..=half)
    }

    /// After a successful connection: start again from `min`.
    pub fn reset(&mut self) {
        self.base = self.min;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_to_the_cap_and_resets() {
        let (min, max) = (Duration::from_millis(100), Duration::from_secs(2));
        let mut b = Backoff::new(min, max, 1);
        let first = b.next_wait();
        assert!(first >= min / 2 && first <= min);
        let waits: Vec<_> = (0..20).map(|_| b.next_wait()).collect();
        assert!(waits.iter().all(|w| *w <= max));
        assert!(waits[10..].iter().all(|w| *w >= max / 2), "{waits:?}");
        b.reset();
        assert!(b.next_wait() <= min);
    }
}
