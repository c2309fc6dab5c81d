//! The continuous publisher's account of its points, like a tracker's offline buffer: point
//! `n` is due at `start + n / rate` and carries that instant as its time (epoch ms, unique per
//! point while the rate is at most 1000/s); due points wait in a queue (oldest first) until
//! they are sent, each in-flight one is known by its packet id, and a PUBACK moves it to the
//! acknowledged record. When a connection is lost, what was in flight goes back to the front
//! of the queue and is sent again on the next connection. Pure: no I/O, no clock.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};

/// Why a PUBACK does not fit the ledger.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("PUBACK for packet {0}, which is not in flight")]
pub struct UnknownAck(pub u16);

#[derive(Debug)]
pub struct Ledger {
    /// Time of point 0 (epoch ms).
    start_ms: i64,
    /// Points per second.
    rate: f64,
    /// Points `0..due` are due (generated).
    due: u64,
    /// Due points neither in flight nor acknowledged, oldest first.
    queue: VecDeque<u64>,
    /// Packet id → (point, when it was sent).
    in_flight: HashMap<u16, (u64, Instant)>,
    /// Acknowledged points → how many PUBACKs each got (more than one after a resend whose
    /// first PUBACK was not lost after all; harmless, counted).
    acked: BTreeMap<u64, u32>,
    /// The packet id the next send tries first.
    next_pkid: u16,
    /// No point becomes due any more (the run is stopping).
    frozen: bool,
    /// Points sent again after a lost connection.
    resent: u64,
}

impl Ledger {
    /// A ledger whose point 0 is at `start_ms`; `rate` must be finite and positive (the
    /// publisher checks it).
    pub fn new(start_ms: i64, rate: f64) -> Self {
        Self {
            start_ms,
            rate,
            due: 0,
            queue: VecDeque::new(),
            in_flight: HashMap::new(),
            acked: BTreeMap::new(),
            next_pkid: 1,
            frozen: false,
            resent: 0,
        }
    }

    /// The time (epoch ms) of point `n`.
    pub fn time_of(&self, n: u64) -> i64 {
        self.start_ms + (n as f64 * 1000.0 / self.rate).floor() as i64
    }

    /// Makes every point whose time is at most `now_ms` due. Returns how many became due.
    pub fn generate_until(&mut self, now_ms: i64) -> u64 {
        if self.frozen {
            return 0;
        }
        let before = self.due;
        while self.time_of(self.due) <= now_ms {
            self.queue.push_back(self.due);
            self.due += 1;
        }
        self.due - before
    }

    /// Milliseconds from `now_ms` until the next point is due (None once frozen).
    pub fn next_due_in(&self, now_ms: i64) -> Option<Duration> {
        if self.frozen {
            return None;
        }
        let wait = (self.time_of(self.due) - now_ms).max(0);
        Some(Duration::from_millis(wait as u64))
    }

    /// No more points become due: what is due now is all the run will publish.
    pub fn freeze(&mut self) {
        self.frozen = true;
    }

    /// Takes the oldest queued point and gives it a free packet id, if fewer than `window`
    /// are in flight: `(packet id, point, time ms)`.
    pub fn next_to_send(&mut self, window: usize, now: Instant) -> Option<(u16, u64, i64)> {
        if self.in_flight.len() >= window.min(u16::MAX as usize) {
            return None;
        }
        let point = self.queue.pop_front()?;
        let mut pkid = self.next_pkid;
        while self.in_flight.contains_key(&pkid) {
            pkid = next(pkid);
        }
        self.next_pkid = next(pkid);
        self.in_flight.insert(pkid, (point, now));
        Some((pkid, point, self.time_of(point)))
    }

    /// A PUBACK: the point of this packet id is acknowledged.
    pub fn ack(&mut self, pkid: u16) -> Result<i64, UnknownAck> {
        let (point, _) = self.in_flight.remove(&pkid).ok_or(UnknownAck(pkid))?;
        *self.acked.entry(point).or_default() += 1;
        Ok(self.time_of(point))
    }

    /// The connection was lost: what was in flight is queued again, oldest first, ahead of
    /// the rest (points acknowledged meanwhile are not resent).
    pub fn connection_lost(&mut self) {
        let mut back: Vec<u64> = self.in_flight.drain().map(|(_, (p, _))| p).collect();
        back.sort_unstable();
        self.resent += back.len() as u64;
        for p in back.into_iter().rev() {
            self.queue.push_front(p);
        }
    }

    /// How long the oldest in-flight point has waited for its PUBACK.
    pub fn oldest_wait(&self, now: Instant) -> Option<Duration> {
        self.in_flight
            .values()
            .map(|(_, sent)| now.saturating_duration_since(*sent))
            .max()
    }

    /// Nothing queued, nothing in flight.
    pub fn settled(&self) -> bool {
        self.queue.is_empty() && self.in_flight.is_empty()
    }

    pub fn due(&self) -> u64 {
        self.due
    }
    pub fn queued(&self) -> usize {
        self.queue.len()
    }
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }
    pub fn acked(&self) -> usize {
        self.acked.len()
    }
    pub fn resent(&self) -> u64 {
        self.resent
    }
    /// PUBACKs beyond the first for a point.
    pub fn repeated_acks(&self) -> u64 {
        self.acked.values().map(|n| u64::from(n - 1)).sum()
    }

    /// Times (epoch ms, ascending) of the acknowledged points.
    pub fn acked_times(&self) -> Vec<i64> {
        self.acked.keys().map(|p| self.time_of(*p)).collect()
    }

    /// Times (epoch ms, ascending) of due points never acknowledged.
    pub fn unacked_times(&self) -> Vec<i64> {
        (0..self.due)
            .filter(|p| !self.acked.contains_key(p))
            .map(|p| self.time_of(p))
            .collect()
    }

    /// The times of the first and the last due point, if any is due.
    pub fn span(&self) -> Option<(i64, i64)> {
        (self.due > 0).then(|| (self.time_of(0), self.time_of(self.due - 1)))
    }
}

/// Packet ids run 1..=65535 (0 is not a valid one).
fn next(pkid: u16) -> u16 {
    pkid.checked_add(1).unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_are_due_at_the_rate_with_unique_times() {
        let mut l = Ledger::new(1_000_000, 3.0);
        assert_eq!(l.generate_until(999_999), 0);
        assert_eq!(l.generate_until(1_001_000), 4, "0, 333, 666 and 1000 ms");
        let times: Vec<i64> = (0..4).map(|n| l.time_of(n)).collect();
        assert_eq!(times, [1_000_000, 1_000_333, 1_000_666, 1_001_000]);
        assert_eq!(l.next_due_in(1_001_100), Some(Duration::from_millis(233)));
        // At the highest rate the times are still distinct.
        let l = Ledger::new(0, 1000.0);
        let t: Vec<i64> = (0..5000).map(|n| l.time_of(n)).collect();
        assert!(t.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn a_window_bounds_what_is_in_flight_and_acks_are_recorded() {
        let now = Instant::now();
        let mut l = Ledger::new(0, 10.0);
        l.generate_until(999);
        assert_eq!(l.queued(), 10);
        let sent: Vec<_> = std::iter::from_fn(|| l.next_to_send(3, now)).collect();
        assert_eq!(sent.len(), 3);
        assert_eq!(sent[0], (1, 0, 0));
        assert_eq!(sent[2], (3, 2, 200));
        assert_eq!(l.ack(2), Ok(100));
        assert_eq!(l.ack(2), Err(UnknownAck(2)), "not in flight any more");
        assert_eq!(l.ack(77), Err(UnknownAck(77)));
        assert_eq!(l.next_to_send(3, now), Some((4, 3, 300)));
        assert_eq!(l.acked_times(), [100]);
        assert_eq!(l.in_flight(), 3);
    }

    #[test]
    fn a_lost_connection_resends_in_flight_points_first_and_in_order() {
        let now = Instant::now();
        let mut l = Ledger::new(0, 10.0);
        l.generate_until(499);
        for _ in 0..3 {
            l.next_to_send(10, now);
        }
        l.ack(2).unwrap();
        l.connection_lost();
        assert_eq!(l.in_flight(), 0);
        assert_eq!(l.resent(), 2);
        let order: Vec<u64> = std::iter::from_fn(|| l.next_to_send(10, now))
            .map(|(_, p, _)| p)
            .collect();
        assert_eq!(order, [0, 2, 3, 4], "point 1 was acknowledged");
        for pkid in [4, 5, 6, 7] {
            l.ack(pkid).unwrap();
        }
        assert!(l.settled());
        assert_eq!(l.acked(), 5);
        assert!(l.unacked_times().is_empty());
        assert_eq!(l.span(), Some((0, 400)));
    }

    #[test]
    fn packet_ids_wrap_and_skip_those_in_use() {
        let now = Instant::now();
        let mut l = Ledger::new(0, 1000.0);
        l.generate_until(70_000);
        let (first, _, _) = l.next_to_send(2, now).unwrap();
        assert_eq!(first, 1);
        // Send and acknowledge until the ids wrap; packet 1 stays in flight.
        for _ in 0..65_535 {
            let (pkid, _, _) = l.next_to_send(2, now).unwrap();
            assert_ne!(pkid, 0);
            assert_ne!(pkid, 1, "packet 1 is still in flight");
            l.ack(pkid).unwrap();
        }
        assert_eq!(l.in_flight(), 1);
    }

    #[test]
    fn a_frozen_ledger_makes_nothing_due_and_reports_the_unacked() {
        let now = Instant::now();
        let mut l = Ledger::new(5_000, 2.0);
        l.generate_until(6_000);
        l.freeze();
        assert_eq!(l.generate_until(60_000), 0);
        assert_eq!(l.next_due_in(6_000), None);
        l.next_to_send(1, now);
        l.ack(1).unwrap();
        assert_eq!(l.acked_times(), [5_000]);
        assert_eq!(l.unacked_times(), [5_500, 6_000]);
        assert!(l.oldest_wait(now).is_none());
        assert!(!l.settled());
    }
}
