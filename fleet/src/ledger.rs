//! Exact acknowledgement bookkeeping of one tracker. Every generated point is in exactly one
//! place: the send buffer, a message handed to the MQTT client that has no packet id yet
//! (`awaiting`), a message in flight under a packet id, or the acknowledged list. A point
//! moves to `acked` only on the PUBACK of the message that carried it, so it is counted once;
//! on a lost connection everything not acknowledged goes back to the front of the buffer, in
//! time order, to be resent.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::position::Position;

/// Points handed to the MQTT client as one message.
#[derive(Debug)]
struct Message {
    points: Vec<Position>,
    /// When `publish` was called: the latency clock starts here.
    sent_at: Instant,
}

/// Result of a PUBACK that matched a message in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ack {
    /// Points the acknowledged message carried.
    pub points: usize,
    /// From `publish` to PUBACK.
    pub latency: Duration,
}

/// Events that do not fit the bookkeeping (they mean a bug or a misbehaving client/broker).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LedgerError {
    #[error("the MQTT client reported packet id {0} for a publish the fleet did not make")]
    UnexpectedPublish(u16),
    #[error("PUBACK for packet id {0}, which no message in flight carries")]
    UnknownAck(u16),
}

/// Where every point of one device is.
#[derive(Debug, Default)]
pub struct Ledger {
    /// Generated, not yet handed to the client; oldest first.
    buffer: VecDeque<Position>,
    /// How many points at the front of `buffer` were there when the connection came up
    /// (they are flushed in larger messages).
    backlog: usize,
    /// Handed to the client, packet id not known yet; in publish order.
    awaiting: VecDeque<Message>,
    /// Sent under a packet id, waiting for PUBACK; in publish order.
    inflight: VecDeque<(u16, Message)>,
    /// Times (ms) of acknowledged points.
    acked: Vec<i64>,
    /// Emptied point vectors, reused for the next messages.
    spare: Vec<Vec<Position>>,
}

impl Ledger {
    pub fn new() -> Self {
        Ledger::default()
    }

    /// A newly generated point.
    pub fn push(&mut self, p: Position) {
        self.buffer.push_back(p);
    }

    /// Time (ms) of the oldest point waiting in the buffer.
    pub fn oldest_buffered(&self) -> Option<i64> {
        self.buffer.front().map(|p| p.time)
    }

    /// Messages handed to the client and not acknowledged.
    pub fn messages_in_flight(&self) -> usize {
        self.awaiting.len() + self.inflight.len()
    }

    /// Points generated and not acknowledged (buffered or in flight).
    pub fn unacked(&self) -> usize {
        self.buffer.len()
            + self.awaiting.iter().map(|m| m.points.len()).sum::<usize>()
            + self
                .inflight
                .iter()
                .map(|(_, m)| m.points.len())
                .sum::<usize>()
    }

    /// Points acknowledged so far.
    #[cfg(test)]
    pub fn acked(&self) -> usize {
        self.acked.len()
    }

    /// Nothing left to send or to wait for.
    pub fn is_settled(&self) -> bool {
        self.buffer.is_empty() && self.awaiting.is_empty() && self.inflight.is_empty()
    }

    /// The connection is up: what is buffered now is backlog.
    pub fn on_connected(&mut self) {
        self.backlog = self.buffer.len();
    }

    /// Takes the next message's points off the buffer, or `None` if there is no full batch
    /// (`partial` allows a short one). Backlog goes in batches of up to `backlog_batch`,
    /// fresh points in batches of exactly `batch`.
    pub fn take_batch(
        &mut self,
        batch: usize,
        backlog_batch: usize,
        partial: bool,
    ) -> Option<Vec<Position>> {
        if self.buffer.is_empty() {
            return None;
        }
        let n = if self.backlog > 0 {
            self.backlog.min(backlog_batch)
        } else if self.buffer.len() >= batch {
            batch
        } else if partial && !self.buffer.is_empty() {
            self.buffer.len()
        } else {
            return None;
        };
        let n = n.min(self.buffer.len()).max(1);
        self.backlog = self.backlog.saturating_sub(n);
        let mut v = self.spare.pop().unwrap_or_default();
        v.extend(self.buffer.drain(..n));
        Some(v)
    }

    /// The client accepted `points` for publishing at `now`.
    pub fn sent(&mut self, points: Vec<Position>, now: Instant) {
        self.awaiting.push_back(Message {
            points,
            sent_at: now,
        });
    }

    /// The client refused `points` (its queue is full or closed): back to the buffer front.
    pub fn unsend(&mut self, mut points: Vec<Position>) {
        self.backlog += points.len();
        for p in points.drain(..).rev() {
            self.buffer.push_front(p);
        }
        self.spare.push(points);
    }

    /// The client wrote the oldest awaiting message under packet id `pkid`.
    pub fn on_outgoing(&mut self, pkid: u16) -> Result<(), LedgerError> {
        let m = self
            .awaiting
            .pop_front()
            .ok_or(LedgerError::UnexpectedPublish(pkid))?;
        self.inflight.push_back((pkid, m));
        Ok(())
    }

    /// PUBACK for `pkid` at `now`: its points are acknowledged.
    pub fn on_ack(&mut self, pkid: u16, now: Instant) -> Result<Ack, LedgerError> {
        let i = self
            .inflight
            .iter()
            .position(|(id, _)| *id == pkid)
            .ok_or(LedgerError::UnknownAck(pkid))?;
        let (_, mut m) = self
            .inflight
            .remove(i)
            .ok_or(LedgerError::UnknownAck(pkid))?;
        let ack = Ack {
            points: m.points.len(),
            latency: now.saturating_duration_since(m.sent_at),
        };
        self.acked.extend(m.points.iter().map(|p| p.time));
        m.points.clear();
        self.spare.push(m.points);
        Ok(ack)
    }

    /// The connection is gone: every unacknowledged point goes back to the buffer front in
    /// time order. Returns how many points will be resent.
    pub fn on_disconnect(&mut self) -> usize {
        let mut n = 0;
        let older = self
            .inflight
            .drain(..)
            .map(|(_, m)| m)
            .chain(self.awaiting.drain(..))
            .collect::<Vec<_>>();
        for m in older.into_iter().rev() {
            n += m.points.len();
            for p in m.points.iter().rev() {
                self.buffer.push_front(*p);
            }
        }
        self.backlog = 0;
        n
    }

    /// (acknowledged times, unacknowledged times), each in time order.
    pub fn into_times(mut self) -> (Vec<i64>, Vec<i64>) {
        self.on_disconnect();
        // Already in order when the broker acknowledges in order (MQTT 3.1.1 brokers do).
        self.acked.sort_unstable();
        let unacked = self.buffer.iter().map(|p| p.time).collect();
        (self.acked, unacked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pt(time: i64) -> Position {
        Position {
            time,
            lat: 0.0,
            lon: 0.0,
            alt: 0.0,
            speed: 0.0,
            heading: 0.0,
            accuracy: 0.0,
            satellites: 0,
            battery: 0.0,
        }
    }

    fn times(v: &[Position]) -> Vec<i64> {
        v.iter().map(|p| p.time).collect()
    }

    #[test]
    fn ack_moves_exactly_the_points_of_that_message() {
        let mut l = Ledger::new();
        for t in 1..=5 {
            l.push(pt(t));
        }
        let now = Instant::now();
        let a = l.take_batch(2, 50, false).unwrap();
        assert_eq!(times(&a), vec![1, 2]);
        l.sent(a, now);
        let b = l.take_batch(2, 50, false).unwrap();
        l.sent(b, now);
        assert!(
            l.take_batch(2, 50, false).is_none(),
            "one point is no full batch"
        );
        l.on_outgoing(7).unwrap();
        l.on_outgoing(8).unwrap();
        let ack = l.on_ack(8, now + Duration::from_millis(3)).unwrap();
        assert_eq!(ack.points, 2);
        assert_eq!(ack.latency, Duration::from_millis(3));
        assert_eq!(
            l.on_ack(8, now),
            Err(LedgerError::UnknownAck(8)),
            "acked once"
        );
        assert_eq!(l.acked(), 2);
        assert_eq!(l.unacked(), 3);
        let (acked, unacked) = l.into_times();
        assert_eq!(acked, vec![3, 4]);
        assert_eq!(unacked, vec![1, 2, 5]);
    }

    #[test]
    fn disconnect_requeues_in_time_order_and_backlog_goes_in_big_batches() {
        let mut l = Ledger::new();
        for t in 1..=6 {
            l.push(pt(t));
        }
        let now = Instant::now();
        for _ in 0..3 {
            let b = l.take_batch(1, 50, false).unwrap();
            l.sent(b, now);
        }
        l.on_outgoing(1).unwrap();
        l.on_outgoing(2).unwrap(); // message 3 never got a packet id
        l.on_ack(1, now).unwrap();
        assert_eq!(l.on_disconnect(), 2);
        assert_eq!(l.messages_in_flight(), 0);
        l.push(pt(7));
        l.on_connected();
        let b = l.take_batch(1, 3, false).unwrap();
        assert_eq!(times(&b), vec![2, 3, 4]);
        l.sent(b, now);
        let b = l.take_batch(1, 3, false).unwrap();
        assert_eq!(times(&b), vec![5, 6, 7]);
        l.sent(b, now);
        assert!(l.take_batch(1, 3, false).is_none());
        l.push(pt(8));
        assert_eq!(times(&l.take_batch(1, 3, false).unwrap()), vec![8]);
    }

    #[test]
    fn unexpected_events_are_errors_not_panics() {
        let mut l = Ledger::new();
        assert_eq!(l.on_outgoing(3), Err(LedgerError::UnexpectedPublish(3)));
        assert_eq!(l.on_ack(3, Instant::now()), Err(LedgerError::UnknownAck(3)));
    }

    #[test]
    fn refused_publish_goes_back_to_the_front() {
        let mut l = Ledger::new();
        for t in 1..=3 {
            l.push(pt(t));
        }
        let b = l.take_batch(2, 50, false).unwrap();
        l.unsend(b);
        // the refused points are resent first, as one backlog message
        assert_eq!(times(&l.take_batch(1, 50, false).unwrap()), vec![1, 2]);
        assert_eq!(times(&l.take_batch(1, 50, false).unwrap()), vec![3]);
    }

    #[test]
    fn partial_batch_only_when_asked() {
        let mut l = Ledger::new();
        l.push(pt(1));
        assert!(l.take_batch(10, 50, false).is_none());
        assert_eq!(times(&l.take_batch(10, 50, true).unwrap()), vec![1]);
        assert!(l.take_batch(10, 50, true).is_none());
    }

    /// Random interleavings of every event: no point is lost or counted twice.
    #[test]
    fn model_every_point_is_in_exactly_one_place() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::SmallRng::seed_from_u64(42);
        for _round in 0..200 {
            let mut l = Ledger::new();
            let mut next_t = 0i64;
            let mut pkid = 0u16;
            let mut assigned: Vec<u16> = Vec::new();
            for _ in 0..300 {
                match rng.random_range(0..7) {
                    0 | 1 => {
                        next_t += 1;
                        l.push(pt(next_t));
                    }
                    2 => {
                        if let Some(b) = l.take_batch(rng.random_range(1..4), 5, rng.random()) {
                            if rng.random_range(0..10) == 0 {
                                l.unsend(b);
                            } else {
                                l.sent(b, Instant::now());
                            }
                        }
                    }
                    3 => {
                        pkid = pkid.wrapping_add(1);
                        if l.on_outgoing(pkid).is_ok() {
                            assigned.push(pkid);
                        }
                    }
                    4 | 5 if !assigned.is_empty() => {
                        let i = rng.random_range(0..assigned.len());
                        let id = assigned.swap_remove(i);
                        l.on_ack(id, Instant::now()).unwrap();
                    }
                    6 if rng.random_range(0..5) == 0 => {
                        l.on_disconnect();
                        assigned.clear();
                        l.on_connected();
                    }
                    _ => {}
                }
                assert_eq!(l.acked() + l.unacked(), next_t as usize);
            }
            let (acked, unacked) = l.into_times();
            let mut all: Vec<i64> = acked.iter().chain(unacked.iter()).copied().collect();
            all.sort_unstable();
            assert_eq!(all, (1..=next_t).collect::<Vec<_>>());
            assert!(unacked.windows(2).all(|w| w[0] < w[1]), "resend order");
        }
    }
}
