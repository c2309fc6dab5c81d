//! The ledger: which LSN ranges exist on disk, what is durable, what is released.
//!
//! Shared (under one mutex) by the writer thread, which extends it after each fsync, by
//! `release`, which moves the release point and drops segments, and by readers, which ask it
//! where the next readable bytes are.

use std::collections::BTreeMap;

use super::Lsn;

/// Log positions and counters that several parties read and update together.
#[derive(Debug, Default)]
pub(crate) struct Ledger {
    /// Segments on disk: base LSN -> end LSN (just past the last durable byte).
    pub segments: BTreeMap<Lsn, Lsn>,
    /// Quarantined ranges readers must skip: start LSN -> end LSN.
    pub skips: BTreeMap<Lsn, Lsn>,
    /// Everything below this LSN is fsynced.
    pub durable_end: Lsn,
    /// LSN of the newest durable record.
    pub last_durable_lsn: Option<Lsn>,
    /// Sequence number the next appended record gets.
    pub next_seq: u64,
    /// First position not yet released (everything below is in the database).
    pub release_point: Lsn,
    /// Sequence number of the oldest unreleased record (`next_seq` if none).
    pub release_seq: u64,
    /// Append time (µs since the epoch) of the oldest unreleased record.
    pub oldest_unreleased_us: Option<u64>,
}

/// What a reader at some position should do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Plan {
    /// Read the bytes `[from, to)` of the segment starting at `base`; they are durable and
    /// hold whole records.
    Read { base: Lsn, from: Lsn, to: Lsn },
    /// Nothing durable at or after `at` yet.
    Wait { at: Lsn },
}

impl Ledger {
    /// Moves `pos` forward past quarantined ranges and gaps between segments, to the start of
    /// the next readable byte or to the durable end.
    pub fn normalize(&self, mut pos: Lsn) -> Lsn {
        loop {
            if pos >= self.durable_end {
                return pos;
            }
            match self.segments.range(..=pos).next_back() {
                Some((_, &end)) if pos < end => match self.skips.range(..=pos).next_back() {
                    Some((_, &skip_end)) if pos < skip_end => pos = skip_end,
                    _ => return pos,
                },
                _ => match self.segments.range(pos + 1..).next() {
                    Some((&next, _)) => pos = next,
                    None => return pos,
                },
            }
        }
    }

    /// Where a reader whose next record starts at (or after) `pos` should read.
    pub fn plan(&self, pos: Lsn) -> Plan {
        let from = self.normalize(pos);
        if from >= self.durable_end {
            return Plan::Wait { at: from };
        }
        let Some((&base, &end)) = self.segments.range(..=from).next_back() else {
            return Plan::Wait { at: from };
        };
        let to = match self.skips.range(from + 1..).next() {
            Some((&skip, _)) if skip < end => skip,
            _ => end,
        };
        Plan::Read { base, from, to }
    }

    /// The segment holding byte `lsn`, if it is on disk.
    pub fn segment_of(&self, lsn: Lsn) -> Option<Lsn> {
        match self.segments.range(..=lsn).next_back() {
            Some((&base, &end)) if lsn < end => Some(base),
            _ => None,
        }
    }

    /// The quarantined range containing `lsn`, if any, as its end.
    pub fn skip_containing(&self, lsn: Lsn) -> Option<Lsn> {
        match self.skips.range(..=lsn).next_back() {
            Some((_, &end)) if lsn < end => Some(end),
            _ => None,
        }
    }

    /// Bytes appended but not released.
    pub fn unreleased_bytes(&self) -> u64 {
        self.durable_end.saturating_sub(self.release_point)
    }

    /// Bytes of segments on disk.
    pub fn disk_bytes(&self) -> u64 {
        self.segments.iter().map(|(base, end)| end - base).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ledger() -> Ledger {
        let mut l = Ledger::default();
        l.segments.insert(100, 200);
        l.segments.insert(250, 400); // gap 200..250 (a cut tail)
        l.skips.insert(300, 320);
        l.durable_end = 400;
        l
    }

    #[test]
    fn normalize_skips_gaps_and_quarantine() {
        let l = ledger();
        assert_eq!(l.normalize(0), 100);
        assert_eq!(l.normalize(150), 150);
        assert_eq!(l.normalize(200), 250);
        assert_eq!(l.normalize(300), 320);
        assert_eq!(l.normalize(310), 320);
        assert_eq!(l.normalize(400), 400);
    }

    #[test]
    fn plans_stop_before_quarantine_and_wait_at_end() {
        let l = ledger();
        assert_eq!(
            l.plan(0),
            Plan::Read {
                base: 100,
                from: 100,
                to: 200
            }
        );
        assert_eq!(
            l.plan(260),
            Plan::Read {
                base: 250,
                from: 260,
                to: 300
            }
        );
        assert_eq!(
            l.plan(300),
            Plan::Read {
                base: 250,
                from: 320,
                to: 400
            }
        );
        assert_eq!(l.plan(400), Plan::Wait { at: 400 });
        assert_eq!(l.segment_of(199), Some(100));
        assert_eq!(l.segment_of(220), None);
        assert_eq!(l.skip_containing(319), Some(320));
        assert_eq!(l.skip_containing(320), None);
    }
}
