//! Admission to argon2 verification. At most N verifications run at once (each takes ~19 MiB
//! and a core for tens of milliseconds), in arrival order. A login whose wait for a slot would
//! exceed its bound is turned away at once as "busy" instead of hanging until the client or
//! the handshake deadline gives up: during a cold reconnect storm the devices that cannot be
//! served in time are told quickly, back off and retry, while the others get in.
//!
//! The expected wait is (logins queued ahead − free slots + 1) × the recent verification time
//! ÷ the slots. A login takes its place in the queue (`reserve`) as soon as it knows it needs
//! argon2, so that a burst of logins arriving together counts itself. Only accounts with a
//! chosen secret get here: generated secrets have the fast scheme (see `secret`).
//! The verification time is a moving average of what the verifications here took (wall time,
//! so it includes the contention of a loaded machine), seeded at construction by timing one
//! hash so that the very first storm after a restart is already predicted.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, SemaphorePermit};

use super::secret;
use crate::metrics as m;

/// The login would wait longer than its bound for a verification slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("every argon2 verification slot is taken for longer than the login may wait")]
pub struct Busy;

/// Bounded, fair admission to argon2 verification with a wait prediction.
pub struct VerifyGate {
    slots: Semaphore,
    parallel: usize,
    /// Logins that reserved a place and do not hold a slot yet.
    queued: AtomicUsize,
    /// Moving average of one verification's wall time, in nanoseconds (0 = not known yet).
    avg_nanos: Arc<AtomicU64>,
}

/// A verification slot; give it back by dropping it.
pub struct Slot<'a> {
    _permit: SemaphorePermit<'a>,
    gate: &'a VerifyGate,
}

impl Slot<'_> {
    /// Records how long the verification run under this slot took.
    pub fn record(&self, took: Duration) {
        self.gate.record(took);
    }
}

impl VerifyGate {
    /// A gate of `parallel` slots (at least one). Times one argon2 hash on a thread of its own
    /// to seed the verification time.
    pub fn new(parallel: usize) -> VerifyGate {
        let gate = VerifyGate::unseeded(parallel);
        let avg = gate.avg_nanos.clone();
        let spawned = std::thread::Builder::new()
            .name("argon2-calibrate".into())
            .spawn(move || {
                let started = Instant::now();
                if secret::hash_slow("calibration").is_ok() {
                    // Only a first estimate: a real verification may already have recorded one.
                    let _ = avg.compare_exchange(
                        0,
                        nanos(started.elapsed()),
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    );
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot time argon2 at start: the first busy predictions wait for a real verification");
        }
        gate
    }

    /// A gate without the calibration hash (the verification time is learnt from use).
    pub fn unseeded(parallel: usize) -> VerifyGate {
        let parallel = parallel.max(1);
        VerifyGate {
            slots: Semaphore::new(parallel),
            parallel,
            queued: AtomicUsize::new(0),
            avg_nanos: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Slots (verifications at once).
    pub fn parallel(&self) -> usize {
        self.parallel
    }

    /// The recent time of one verification, when known.
    pub fn verify_time(&self) -> Option<Duration> {
        match self.avg_nanos.load(Ordering::Relaxed) {
            0 => None,
            n => Some(Duration::from_nanos(n)),
        }
    }

    /// How long a login arriving now would wait for a slot: zero when one is free, `None`
    /// while the verification time is not known.
    #[cfg(test)]
    fn expected_wait(&self) -> Option<Duration> {
        self.wait_behind(self.queued.load(Ordering::Relaxed))
    }

    /// The expected wait of a login with `ahead` logins queued (or reserved) before it.
    fn wait_behind(&self, ahead: usize) -> Option<Duration> {
        let free = self.slots.available_permits();
        if ahead < free {
            return Some(Duration::ZERO);
        }
        let per = self.verify_time()?;
        Some(per.mul_f64((ahead - free + 1) as f64 / self.parallel as f64))
    }

    /// Takes a place in the queue for a slot, or refuses at once when the expected wait is
    /// longer than `bound`, so that logins arriving together count each other; dropping the
    /// reservation (no verification needed after all) gives the place back.
    pub fn reserve(&self, bound: Duration) -> Result<Reservation<'_>, Busy> {
        let ahead = self.queued.fetch_add(1, Ordering::Relaxed);
        let place = Reservation { gate: self };
        match self.wait_behind(ahead) {
            Some(w) if w > bound => Err(Busy),
            _ => Ok(place),
        }
    }

    /// Waits for a slot for at most `bound`; refuses at once when the expected wait is longer.
    pub async fn acquire(&self, bound: Duration) -> Result<Slot<'_>, Busy> {
        self.reserve(bound)?.acquire(bound).await
    }

    fn slot<'a>(&'a self, permit: SemaphorePermit<'a>) -> Slot<'a> {
        Slot {
            _permit: permit,
            gate: self,
        }
    }

    fn record(&self, took: Duration) {
        metrics::counter!(m::AUTH_VERIFICATIONS, "scheme" => secret::Scheme::Slow.as_str())
            .increment(1);
        metrics::histogram!(m::AUTH_VERIFY_LATENCY).record(took.as_secs_f64());
        let sample = nanos(took);
        let old = self.avg_nanos.load(Ordering::Relaxed);
        // Exponential moving average (weight 1/4 to the new sample). A lost update under a
        // race only delays the average by one sample.
        let new = if old == 0 {
            sample
        } else {
            (old.saturating_mul(3).saturating_add(sample)) / 4
        };
        self.avg_nanos.store(new.max(1), Ordering::Relaxed);
    }
}

/// A place in the queue for a verification slot (see `VerifyGate::reserve`), left on drop.
pub struct Reservation<'a> {
    gate: &'a VerifyGate,
}

impl<'a> Reservation<'a> {
    /// Waits for the slot at most `bound` (the prediction was made at reservation time).
    pub async fn acquire(self, bound: Duration) -> Result<Slot<'a>, Busy> {
        let gate = self.gate;
        let permit = match gate.slots.try_acquire() {
            Ok(p) => p,
            Err(_) => match tokio::time::timeout(bound, gate.slots.acquire()).await {
                Ok(Ok(p)) => p,
                // Timed out (the prediction was optimistic), or the semaphore was closed
                // (never done here): either way there is no slot in time.
                Ok(Err(_)) | Err(_) => return Err(Busy),
            },
        };
        drop(self);
        Ok(gate.slot(permit))
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        self.gate.queued.fetch_sub(1, Ordering::Relaxed);
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_free_slot_is_given_at_once_and_returned_on_drop() {
        let g = VerifyGate::unseeded(2);
        assert_eq!(g.expected_wait(), Some(Duration::ZERO));
        let a = g.acquire(Duration::ZERO).await.unwrap();
        let _b = g.acquire(Duration::ZERO).await.unwrap();
        // Both slots taken, verification time unknown: a zero bound times out at once.
        assert_eq!(g.expected_wait(), None);
        assert_eq!(g.acquire(Duration::ZERO).await.err(), Some(Busy));
        drop(a);
        assert!(g.acquire(Duration::ZERO).await.is_ok());
    }

    #[tokio::test]
    async fn the_prediction_refuses_at_once_when_the_queue_is_too_long() {
        let g = Arc::new(VerifyGate::unseeded(1));
        let held = g.acquire(Duration::ZERO).await.unwrap();
        held.record(Duration::from_millis(100));
        assert_eq!(g.verify_time(), Some(Duration::from_millis(100)));
        // One slot, busy, nobody queued: the next waits about one verification.
        assert_eq!(g.expected_wait(), Some(Duration::from_millis(100)));
        assert!(g.reserve(Duration::from_millis(150)).is_ok());
        assert_eq!(g.reserve(Duration::from_millis(50)).err(), Some(Busy));
        assert_eq!(g.queued.load(Ordering::Relaxed), 0, "places given back");
        // Refused without waiting for the bound: with a verification time of 100 s, a bound
        // of 60 s is hopeless, and the answer comes long before those 60 s.
        let hopeless = VerifyGate::unseeded(1);
        let _taken = hopeless.acquire(Duration::ZERO).await.unwrap();
        hopeless.record(Duration::from_secs(100));
        let answer = tokio::time::timeout(
            Duration::from_secs(30),
            hopeless.acquire(Duration::from_secs(60)),
        )
        .await;
        assert!(matches!(answer, Ok(Err(Busy))), "refused at once");
        assert_eq!(hopeless.queued.load(Ordering::Relaxed), 0);

        // A waiter within its bound is queued, and served when the slot comes back.
        let g2 = g.clone();
        let waiter = tokio::spawn(async move {
            g2.acquire(Duration::from_secs(10))
                .await
                .map(|_| ())
                .is_ok()
        });
        while g.queued.load(Ordering::Relaxed) == 0 {
            tokio::task::yield_now().await;
        }
        // Now one is queued: a newcomer expects two verifications.
        assert_eq!(g.expected_wait(), Some(Duration::from_millis(200)));
        drop(held);
        assert!(waiter.await.unwrap());
    }

    #[tokio::test]
    async fn an_optimistic_prediction_still_ends_at_the_bound() {
        let g = VerifyGate::unseeded(1);
        let held = g.acquire(Duration::ZERO).await.unwrap();
        held.record(Duration::from_millis(1));
        let started = Instant::now();
        assert_eq!(g.acquire(Duration::from_millis(30)).await.err(), Some(Busy));
        assert!(started.elapsed() >= Duration::from_millis(30));
        assert_eq!(g.queued.load(Ordering::Relaxed), 0);
    }

    #[tokio::test]
    async fn reservations_count_as_queued_until_they_hold_a_slot_or_are_dropped() {
        let g = VerifyGate::unseeded(2);
        g.record(Duration::from_millis(100));
        // Two free slots: two reservations expect no wait, the third half a verification
        // (two slots), the fourth a whole one.
        let r1 = g.reserve(Duration::ZERO).unwrap();
        let r2 = g.reserve(Duration::ZERO).unwrap();
        assert_eq!(g.expected_wait(), Some(Duration::from_millis(50)));
        assert_eq!(g.reserve(Duration::from_millis(49)).err(), Some(Busy));
        let r3 = g.reserve(Duration::from_millis(50)).unwrap();
        assert_eq!(g.expected_wait(), Some(Duration::from_millis(100)));
        // A login that needed no verification after all gives its place back.
        drop(r3);
        assert_eq!(g.expected_wait(), Some(Duration::from_millis(50)));
        // Holding slots: no longer queued, but the slots are taken.
        let s1 = r1.acquire(Duration::ZERO).await.unwrap();
        let _s2 = r2.acquire(Duration::ZERO).await.unwrap();
        assert_eq!(g.queued.load(Ordering::Relaxed), 0);
        assert_eq!(g.expected_wait(), Some(Duration::from_millis(50)));
        drop(s1);
        assert_eq!(g.expected_wait(), Some(Duration::ZERO));
    }

    #[test]
    fn the_average_follows_the_samples_and_the_calibration_seeds_it() {
        let g = VerifyGate::unseeded(3);
        assert_eq!(g.parallel(), 3);
        g.record(Duration::from_millis(40));
        g.record(Duration::from_millis(80));
        assert_eq!(g.verify_time(), Some(Duration::from_millis(50)));
        assert_eq!(VerifyGate::unseeded(0).parallel(), 1);

        let seeded = VerifyGate::new(1);
        let deadline = Instant::now() + Duration::from_secs(30);
        while seeded.verify_time().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(seeded.verify_time().is_some(), "the calibration hash ran");
    }
}
