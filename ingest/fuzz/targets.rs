//! The fuzz harnesses, one function per target, shared by the cargo-fuzz binaries
//! (`fuzz_targets/*.rs`, nightly, libFuzzer) and by the stable-Rust test that CI runs
//! (`tests/security_fuzz.rs`). Each takes arbitrary bytes and must neither panic nor hang; the
//! properties they check are stated next to each.

#![allow(dead_code)]

use chrono::{TimeZone, Utc};
use ingest::position::{self, Decoded, ValidationConfig};

/// Topics the payload decoder is driven with: the first input byte picks one.
const TOPICS: &[&str] = &[
    "devices/dev-1/positions",
    "owntracks/alice/phone",
    "owntracks/alice/phone/event",
    "351756051523999/data",
    "devices/../positions",
    "unknown/topic",
];

/// Every payload decoder (project JSON, OwnTracks, Teltonika), with and without an
/// authenticated identity. Property: never panics; a message yields positions and/or rejects,
/// or is ignored; every position belongs to the identity when there is one.
pub fn position_decode(data: &[u8]) {
    let Some((&pick, payload)) = data.split_first() else {
        return;
    };
    let topic = TOPICS[pick as usize % TOPICS.len()];
    let received = Utc
        .timestamp_millis_opt(1_700_000_000_000)
        .single()
        .unwrap_or_else(Utc::now);
    let cfg = ValidationConfig::default();
    for identity in [None, Some("dev-1"), Some("alice/phone")] {
        if let Decoded::Accepted { positions, rejects } =
            position::decode(topic, payload, identity, received, &cfg)
        {
            if let Some(id) = identity {
                assert!(
                    positions.iter().all(|p| p.device_id == id),
                    "a position escaped its identity"
                );
            }
            // What the WAL stores decodes back to the same values.
            let bytes = position::encode_record(&positions, &rejects);
            let (p2, r2) = position::decode_record(&bytes).expect("own encoding decodes");
            assert_eq!(p2, positions, "positions changed through the WAL record");
            assert_eq!(r2, rejects, "rejects changed through the WAL record");
        }
    }
    // The topic itself is untrusted too.
    if let Ok(topic) = std::str::from_utf8(payload) {
        let _ = position::decode(topic, b"{}", Some("dev-1"), received, &cfg);
    }
}

/// The compact position record stored in the WAL. Properties: arbitrary bytes give an error or
/// values, never a panic; values that decode encode to bytes that decode to the same values
/// (compared through a second encoding, as floats read from arbitrary bytes may be NaN).
pub fn position_record(data: &[u8]) {
    if let Ok((positions, rejects)) = position::decode_record(data) {
        let once = position::encode_record(&positions, &rejects);
        let (p2, r2) = position::decode_record(&once).expect("own encoding decodes");
        let twice = position::encode_record(&p2, &r2);
        assert_eq!(once, twice, "a decoded record does not survive re-encoding");
    }
}

/// The WAL envelope (`ingest::record`). Properties: never panics; a decoded envelope
/// re-encodes to bytes that decode to the same envelope (compared as bytes, as in
/// `position_record`).
pub fn envelope(data: &[u8]) {
    use ingest::record::{decode, encode};
    if let Ok(env) = decode(data) {
        let once = encode(env.received_at, &env.positions, &env.rejects);
        let env2 = decode(&once).expect("own encoding decodes");
        assert_eq!(env2.received_at, env.received_at);
        let twice = encode(env2.received_at, &env2.positions, &env2.rejects);
        assert_eq!(
            once, twice,
            "a decoded envelope does not survive re-encoding"
        );
    }
}

/// The WAL record reader: `data` as a segment read from disk (resynchronising after bad
/// records), then `data` as one payload framed with a valid checksum. Properties: never
/// panics, always advances, and a framed record decodes to its own header.
pub fn wal_record(data: &[u8]) {
    use ingest::wal::record::{
        decode, encode, find_next_valid, Decoded as Rec, RecordHeader, HEADER_BYTES,
    };
    let base = 4096u64;
    let mut off = 0usize;
    let mut steps = 0usize;
    while off < data.len() {
        steps += 1;
        assert!(steps <= data.len() + 1, "the reader did not advance");
        match decode(&data[off..], base + off as u64) {
            Rec::Record(h) => {
                let end = off + HEADER_BYTES + h.len as usize;
                let _ = ingest::record::decode(&data[off + HEADER_BYTES..end]);
                off = end;
            }
            Rec::Incomplete { .. } => break,
            Rec::Bad(_) => match find_next_valid(data, off, base) {
                Some(next) => {
                    assert!(next > off);
                    off = next;
                }
                None => break,
            },
        }
    }
    if data.len() <= 1 << 20 {
        let header = RecordHeader {
            len: data.len() as u32,
            lsn: base,
            seq: 7,
            appended_us: 1,
        };
        let mut buf = Vec::new();
        encode(&mut buf, &header, data);
        assert_eq!(decode(&buf, base), Rec::Record(header));
        let _ = ingest::record::decode(&buf[HEADER_BYTES..]);
    }
}

/// The topic rules of the ACL (`ingest::topic_rules`) with an arbitrary account id and topic
/// (`account\ntopic`). Properties: never panics; a device may publish only a topic naming
/// itself, with no wildcard, that the payload decoder attributes to the same device (never a
/// topic-identity mismatch), and may subscribe only to a filter naming itself with no wildcard
/// and no shared group; a service may publish only a command to one device (never a
/// position); an invalid account id matches nothing.
pub fn acl(data: &[u8]) {
    use ingest::position::RejectReason;
    use ingest::topic_rules::{
        device_may_publish, device_may_subscribe, is_valid_account_id, service_may_publish,
        service_may_subscribe,
    };
    let text = String::from_utf8_lossy(data);
    let (account, topic) = text.split_once('\n').unwrap_or(("dev-1", &text));
    let wildcard = topic.contains(['+', '#']);
    if device_may_publish(account, topic) {
        assert!(
            is_valid_account_id(account),
            "invalid account {account:?} allowed"
        );
        assert!(
            topic.contains(account) && !wildcard,
            "device {account:?} allowed to publish on {topic:?}"
        );
        let received = Utc
            .timestamp_millis_opt(1_700_000_000_000)
            .single()
            .unwrap_or_else(Utc::now);
        let cfg = ValidationConfig::default();
        // The identity is checked before the payload is read: any payload will do.
        if let Decoded::Accepted { rejects, .. } =
            position::decode(topic, b"{}", Some(account), received, &cfg)
        {
            assert!(
                rejects
                    .iter()
                    .all(|r| r.reason != RejectReason::TopicIdentityMismatch),
                "the ACL lets {account:?} publish on {topic:?} but the decoder says it is another device's topic"
            );
        }
    }
    for shared in [false, true] {
        if device_may_subscribe(account, topic, shared) {
            assert!(
                is_valid_account_id(account) && topic.contains(account) && !wildcard && !shared,
                "device {account:?} allowed to subscribe to {topic:?} (shared: {shared})"
            );
        }
    }
    if service_may_publish(account, topic) {
        assert!(
            !wildcard && (topic.ends_with("/commands") || topic.ends_with("/cmd")),
            "service {account:?} allowed to publish on {topic:?}"
        );
        assert!(!topic.ends_with("/positions") && !topic.ends_with("/data"));
    }
    if service_may_subscribe(account, topic) {
        assert!(is_valid_account_id(account));
        assert!(
            topic.ends_with("/positions") || topic.starts_with("owntracks/") || topic == "+/data",
            "service {account:?} allowed to subscribe to {topic:?}"
        );
    }
}
