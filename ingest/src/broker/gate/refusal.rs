//! Logins refused for load, spelled out to the client as "retry later".
//!
//! rmqtt 0.24 lets an authentication hook answer only "bad user name or password" or "not
//! authorized", and "not authorized" tells a tracker that its credentials are wrong (many
//! firmwares then stop retrying). So the hook, when it refuses a login for load (a limit, no
//! verification slot, the registry unreachable), notes why against the client's address, and
//! the gate, which relays the broker's CONNACK to that client, replaces the "not authorized"
//! code with the one that says what happened: "server unavailable" (3) in MQTT 3.1.1, "server
//! busy" (0x89), "connection rate exceeded" (0x9F) or "server unavailable" (0x88) in MQTT 5.
//! Only that one byte changes; the packet keeps its length.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;

/// MQTT 3.1.1 CONNACK "connection refused, not authorized".
pub const V3_NOT_AUTHORIZED: u8 = 0x05;
/// MQTT 3.1.1 CONNACK "connection refused, server unavailable".
pub const V3_SERVER_UNAVAILABLE: u8 = 0x03;
/// MQTT 5 CONNACK "not authorized".
pub const V5_NOT_AUTHORIZED: u8 = 0x87;

/// Notes kept at most: a note lives from the hook's refusal to the CONNACK a few
/// microseconds later, so only a pathological burst comes near; past it, new notes are
/// dropped (the client then gets "not authorized", as before).
const MAX_NOTES: usize = 100_000;

/// Why a login was refused for load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadRefusal {
    /// No room now (connection limit, no verification slot in time).
    Busy,
    /// The connection-rate limit.
    RateExceeded,
    /// The account registry cannot be reached.
    Unavailable,
}

impl LoadRefusal {
    /// The MQTT 5 CONNACK reason code.
    pub fn v5_code(self) -> u8 {
        match self {
            LoadRefusal::Busy => 0x89,
            LoadRefusal::RateExceeded => 0x9F,
            LoadRefusal::Unavailable => 0x88,
        }
    }

    /// The replacement for a refusal code `code` in a CONNACK of MQTT 3.1.1 (`v5` false) or 5,
    /// or `None` when that code is not the "not authorized" this note stands for.
    pub fn rewrite(self, v5: bool, code: u8) -> Option<u8> {
        match (v5, code) {
            (false, V3_NOT_AUTHORIZED) => Some(V3_SERVER_UNAVAILABLE),
            (true, V5_NOT_AUTHORIZED) => Some(self.v5_code()),
            _ => None,
        }
    }
}

/// The notes, shared by the authentication hook and the gate.
#[derive(Debug, Default)]
pub struct Refusals {
    notes: Mutex<HashMap<SocketAddr, LoadRefusal>>,
}

impl Refusals {
    pub fn new() -> Refusals {
        Refusals::default()
    }

    /// The hook refuses the client at `peer` for `why`.
    pub fn note(&self, peer: SocketAddr, why: LoadRefusal) {
        let mut notes = self.notes.lock().unwrap_or_else(|p| p.into_inner());
        if notes.len() < MAX_NOTES {
            notes.insert(peer, why);
        }
    }

    /// The code that replaces refusal `code` in the CONNACK (MQTT 5 when `v5`) to the client
    /// at `peer`, when it is "not authorized" and a load refusal was noted for that client;
    /// the note is used up.
    pub fn replacement(&self, peer: SocketAddr, v5: bool, code: u8) -> Option<u8> {
        let not_authorized = if v5 {
            V5_NOT_AUTHORIZED
        } else {
            V3_NOT_AUTHORIZED
        };
        if code != not_authorized {
            return None;
        }
        self.take(peer)?.rewrite(v5, code)
    }

    /// Takes the note about `peer`, if any (the gate, at the CONNACK or when the connection
    /// ends).
    pub fn take(&self, peer: SocketAddr) -> Option<LoadRefusal> {
        let mut notes = self.notes.lock().unwrap_or_else(|p| p.into_inner());
        if notes.is_empty() {
            return None;
        }
        notes.remove(&peer)
    }

    /// No note held (for tests).
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.notes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_not_authorized_is_rewritten_and_per_version() {
        for why in [
            LoadRefusal::Busy,
            LoadRefusal::RateExceeded,
            LoadRefusal::Unavailable,
        ] {
            assert_eq!(why.rewrite(false, 0x05), Some(0x03));
            assert_eq!(why.rewrite(false, 0x04), None, "bad credentials stay");
            assert_eq!(why.rewrite(false, 0x00), None);
            assert_eq!(why.rewrite(true, 0x87), Some(why.v5_code()));
            assert_eq!(why.rewrite(true, 0x86), None);
        }
        assert_eq!(LoadRefusal::RateExceeded.v5_code(), 0x9F);
        assert_eq!(LoadRefusal::Busy.v5_code(), 0x89);
    }

    #[test]
    fn a_note_is_taken_once() {
        let r = Refusals::new();
        let peer: SocketAddr = "192.0.2.1:5000".parse().unwrap();
        assert_eq!(r.take(peer), None);
        r.note(peer, LoadRefusal::Busy);
        assert_eq!(r.take(peer), Some(LoadRefusal::Busy));
        assert_eq!(r.take(peer), None);
        assert!(r.is_empty());
    }
}
