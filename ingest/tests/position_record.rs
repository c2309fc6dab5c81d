//! The WAL record encoding of decoded messages: property-based round trips, a fixed byte
//! layout, and corrupt input (random bytes, truncations, bit flips) that must give an error,
//! never a panic.

use bytes::Bytes;
use chrono::{DateTime, TimeZone, Utc};
use ingest::position::{
    decode, decode_record, encode_record, Position, RecordError, Reject, RejectReason,
    ValidationConfig, RECORD_VERSION,
};
use proptest::prelude::*;
use serde_json::json;

fn device_id() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-z0-9._:-]{1,64}",
        Just("truck-1".to_owned()),
        Just("alice/phone".to_owned()),
    ]
}

fn finite() -> impl Strategy<Value = f64> {
    prop_oneof![
        -1.0e6..1.0e6f64,
        Just(0.0),
        Just(-0.0),
        Just(f64::MAX),
        Just(f64::MIN_POSITIVE)
    ]
}

fn attributes() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        "[a-z\u{e9}\u{1F600}\"\\\\]{0,12}".prop_map(serde_json::Value::from),
    ];
    let value = leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            prop::collection::btree_map("[a-z]{1,6}", inner, 0..4)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    });
    prop::collection::btree_map("[a-z0-9_]{1,8}", value, 1..5)
        .prop_map(|m| serde_json::Value::Object(m.into_iter().collect()))
}

fn position() -> impl Strategy<Value = Position> {
    (
        device_id(),
        // Any microsecond within years 1900..2200.
        -2_208_988_800_000_000i64..7_258_118_400_000_000i64,
        (-90.0..=90.0f64, -180.0..=180.0f64),
        (
            proptest::option::of(finite()),
            proptest::option::of(finite()),
            proptest::option::of(0.0..360.0f64),
            proptest::option::of(finite()),
        ),
        proptest::option::of(any::<i16>()),
        proptest::option::of(0.0..=100.0f64),
        proptest::option::of(attributes()),
    )
        .prop_map(
            |(
                device_id,
                micros,
                (lat, lon),
                (alt, speed, heading, accuracy),
                satellites,
                battery,
                attributes,
            )| {
                Position {
                    device_id,
                    time: DateTime::from_timestamp_micros(micros).unwrap(),
                    lat,
                    lon,
                    alt,
                    speed,
                    heading,
                    accuracy,
                    satellites,
                    battery,
                    attributes,
                }
            },
        )
}

fn reject() -> impl Strategy<Value = Reject> {
    (
        proptest::option::of(device_id()),
        ".{0,40}",
        prop::sample::select(RejectReason::ALL.to_vec()),
        ".{0,80}",
        prop::collection::vec(any::<u8>(), 0..300),
    )
        .prop_map(|(device_id, topic, reason, detail, payload)| Reject {
            device_id,
            topic,
            reason,
            detail,
            payload: Bytes::from(payload),
        })
}

/// Positions in runs of the same device, as one message produces them.
fn positions() -> impl Strategy<Value = Vec<Position>> {
    prop::collection::vec((position(), 0usize..4), 0..40).prop_map(|items| {
        let mut out: Vec<Position> = Vec::new();
        for (p, same) in items {
            let mut p = p;
            if same > 0 {
                if let Some(prev) = out.last() {
                    p.device_id = prev.device_id.clone();
                }
            }
            out.push(p);
        }
        out
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn round_trip(positions in positions(), rejects in prop::collection::vec(reject(), 0..5)) {
        let bytes = encode_record(&positions, &rejects);
        prop_assert_eq!(bytes[0], RECORD_VERSION);
        let (p2, r2) = decode_record(&bytes).unwrap();
        prop_assert_eq!(p2, positions);
        prop_assert_eq!(r2, rejects);
    }

    #[test]
    fn flipped_bytes_never_panic(positions in positions(), rejects in prop::collection::vec(reject(), 0..3),
                                 flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6)) {
        let mut bytes = encode_record(&positions, &rejects).to_vec();
        for (at, value) in flips {
            let i = at.index(bytes.len());
            bytes[i] ^= value | 1;
        }
        // Either an error or some decoded values; what matters is no panic and no huge allocation.
        let _ = decode_record(&bytes);
    }

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode_record(&bytes);
        let mut versioned = bytes.clone();
        versioned.insert(0, RECORD_VERSION);
        let _ = decode_record(&versioned);
    }
}

proptest! {
    // Each case decodes every prefix of its record: fewer, smaller cases.
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn every_truncation_is_an_error(positions in prop::collection::vec(position(), 0..6),
                                    rejects in prop::collection::vec(reject(), 0..3)) {
        let bytes = encode_record(&positions, &rejects);
        for cut in 0..bytes.len() {
            prop_assert!(decode_record(&bytes[..cut]).is_err(), "cut at {}", cut);
        }
    }
}

fn sample_position() -> Position {
    Position {
        device_id: "d1".to_owned(),
        time: Utc.with_ymd_and_hms(2026, 11, 27, 17, 0, 0).unwrap(),
        lat: 48.85,
        lon: 2.35,
        alt: None,
        speed: Some(3.5),
        heading: None,
        accuracy: None,
        satellites: Some(7),
        battery: None,
        attributes: None,
    }
}

#[test]
fn byte_layout_of_version_1_is_fixed() {
    let bytes = encode_record(&[sample_position(), sample_position()], &[]);
    let mut expected = vec![1u8, 2, 0];
    for first in [true, false] {
        let flags = 0b0001_0010u8 | if first { 0 } else { 0x80 };
        expected.push(flags);
        if first {
            expected.extend_from_slice(&[2, b'd', b'1']);
        }
        expected.extend_from_slice(&1_795_798_800_000_000i64.to_le_bytes());
        expected.extend_from_slice(&48.85f64.to_le_bytes());
        expected.extend_from_slice(&2.35f64.to_le_bytes());
        expected.extend_from_slice(&3.5f64.to_le_bytes());
        expected.extend_from_slice(&7i16.to_le_bytes());
    }
    assert_eq!(&bytes[..], &expected[..]);
}

#[test]
fn specific_corruptions_give_specific_errors() {
    assert_eq!(decode_record(&[]), Err(RecordError::Empty));
    assert_eq!(
        decode_record(&[2, 0, 0]),
        Err(RecordError::UnsupportedVersion(2))
    );
    assert_eq!(decode_record(&[0]), Err(RecordError::UnsupportedVersion(0)));
    assert!(matches!(
        decode_record(&[1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0]),
        Err(RecordError::BadVarint(_))
    ));
    // A count far beyond what the bytes can hold is refused before any allocation.
    assert!(matches!(
        decode_record(&[1, 0xff, 0xff, 0xff, 0xff, 0x0f, 0]),
        Err(RecordError::Truncated(_))
    ));
    let one = encode_record(&[sample_position()], &[]);
    let mut trailing = one.to_vec();
    trailing.push(0);
    assert_eq!(decode_record(&trailing), Err(RecordError::TrailingBytes(1)));
    // The first position cannot refer to a previous device.
    let mut same = one.to_vec();
    same[3] |= 0x80;
    assert!(decode_record(&same).is_err());

    let reject = Reject {
        device_id: None,
        topic: "t".to_owned(),
        reason: RejectReason::InvalidJson,
        detail: "d".to_owned(),
        payload: Bytes::from_static(b"x"),
    };
    let encoded = encode_record(&[], &[reject]).to_vec();
    // [1, 0, 1, flags, topic len, 't', reason, ...]
    let mut bad_reason = encoded.clone();
    bad_reason[6] = 250;
    assert_eq!(
        decode_record(&bad_reason),
        Err(RecordError::UnknownReason(250))
    );
    let mut bad_flags = encoded.clone();
    bad_flags[3] = 0x40;
    assert_eq!(
        decode_record(&bad_flags),
        Err(RecordError::UnknownFlags(0x40))
    );
    let mut bad_utf8 = encoded;
    bad_utf8[5] = 0xff;
    assert_eq!(
        decode_record(&bad_utf8),
        Err(RecordError::InvalidUtf8("reject topic"))
    );

    let mut with_attributes = sample_position();
    with_attributes.attributes = Some(json!({"a": 1}));
    let mut bad_json = encode_record(&[with_attributes], &[]).to_vec();
    let last = bad_json.len() - 1;
    bad_json[last] = b'!';
    assert!(matches!(
        decode_record(&bad_json),
        Err(RecordError::Attributes(_))
    ));

    let mut bad_time = one.to_vec();
    // time is at offset 3 (header) + 1 (flags) + 3 (device id)
    bad_time[7..15].copy_from_slice(&i64::MAX.to_le_bytes());
    assert!(matches!(
        decode_record(&bad_time),
        Err(RecordError::TimeOutOfRange(_))
    ));
}

#[test]
fn decoded_messages_round_trip() {
    let received = Utc.with_ymd_and_hms(2026, 11, 27, 18, 0, 0).unwrap();
    let payload =
        br#"[{"time":"2026-11-27T17:00:00.123456789Z","lat":48.1,"lon":2.1,"speed":3,"fuel":12},
        {"time":"2026-11-27T17:00:10Z","lat":95.0,"lon":2.1}]"#;
    let decoded = decode(
        "devices/bus-7/positions",
        payload,
        None,
        received,
        &ValidationConfig::default(),
    );
    let bytes = encode_record(decoded.positions(), decoded.rejects());
    let (positions, rejects) = decode_record(&bytes).unwrap();
    assert_eq!(positions, decoded.positions());
    assert_eq!(rejects, decoded.rejects());
    assert_eq!(positions.len(), 1);
    assert_eq!(rejects.len(), 1);
}
