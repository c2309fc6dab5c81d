//! Broken and hostile payloads: each must end in a reject with a clear reason, never a panic,
//! and without allocating far more than the payload.

use chrono::{DateTime, TimeZone, Utc};
use ingest::position::{decode, Decoded, RejectReason, ValidationConfig};

fn received() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 27, 18, 0, 0).unwrap()
}

fn run_with(payload: &[u8], cfg: &ValidationConfig) -> Decoded {
    decode("devices/d1/positions", payload, Some("d1"), received(), cfg)
}

/// The message is rejected whole: no position, one reject carrying the raw payload.
fn whole_reject(payload: &[u8], cfg: &ValidationConfig) -> (RejectReason, String) {
    match run_with(payload, cfg) {
        Decoded::Accepted { positions, rejects } => {
            assert!(positions.is_empty());
            assert_eq!(rejects.len(), 1, "{rejects:?}");
            let r = &rejects[0];
            let kept = payload.len().min(cfg.max_payload_bytes);
            assert_eq!(&r.payload[..], &payload[..kept]);
            assert_eq!(r.device_id.as_deref(), Some("d1"));
            (r.reason, r.detail.clone())
        }
        other => panic!("expected a reject, got {other:?}"),
    }
}

fn reason(payload: &[u8]) -> RejectReason {
    whole_reject(payload, &ValidationConfig::default()).0
}

/// Rejects of a single-object message carry the whole payload too.
fn single_reason(payload: &[u8]) -> RejectReason {
    reason(payload)
}

#[test]
fn empty_and_blank_payloads() {
    assert_eq!(reason(b""), RejectReason::EmptyPayload);
    assert_eq!(reason(b"  \n\t "), RejectReason::EmptyPayload);
}

#[test]
fn invalid_utf8() {
    let (r, detail) = whole_reject(
        b"{\"time\":\"2026-11-27T17:00:00Z\",\"lat\":1.5,\"lon\":\xff\xfe}",
        &ValidationConfig::default(),
    );
    assert_eq!(r, RejectReason::InvalidUtf8);
    assert!(detail.contains("UTF-8"), "{detail}");
}

#[test]
fn truncated_json() {
    let full = br#"{"time":"2026-11-27T17:00:00Z","lat":48.85,"lon":2.35,"speed":3}"#;
    for cut in 1..full.len() {
        let r = single_reason(&full[..cut]);
        assert!(
            matches!(r, RejectReason::InvalidJson),
            "cut at {cut}: {:?} -> {r:?}",
            String::from_utf8_lossy(&full[..cut])
        );
    }
    let array = br#"[{"time":"2026-11-27T17:00:00Z","lat":48.85,"lon":2.35},{"time":"2026-1"#;
    assert_eq!(reason(array), RejectReason::InvalidJson);
}

#[test]
fn garbage_and_trailing_bytes() {
    assert_eq!(reason(b"hello"), RejectReason::InvalidJson);
    assert_eq!(reason(b"{lat: 1}"), RejectReason::InvalidJson);
    assert_eq!(reason(b"{\"lat\":1,}"), RejectReason::InvalidJson);
    assert_eq!(
        reason(br#"{"time":"2026-11-27T17:00:00Z","lat":1.5,"lon":2.5} {}"#),
        RejectReason::InvalidJson
    );
    assert_eq!(reason(b"[] x"), RejectReason::InvalidJson);
    assert_eq!(reason(b"{\"lat\":NaN}"), RejectReason::InvalidJson);
    assert_eq!(reason(b"{\"lat\":Infinity}"), RejectReason::InvalidJson);
}

#[test]
fn json_that_is_not_an_object() {
    for payload in [&b"42"[..], b"\"text\"", b"null", b"true", b"1e999999"] {
        assert_eq!(
            reason(payload),
            RejectReason::NotAnObject,
            "{:?}",
            String::from_utf8_lossy(payload)
        );
    }
}

#[test]
fn deep_nesting_100k_levels() {
    let depth = 100_000;
    let arrays = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    // An array of arrays: the outer array's single element is not an object.
    let d = run_with(arrays.as_bytes(), &ValidationConfig::default());
    assert!(d.positions().is_empty());
    assert_eq!(d.rejects().len(), 1);
    assert_eq!(d.rejects()[0].reason, RejectReason::NotAnObject);

    let objects = format!("{}1{}", r#"{"a":"#.repeat(depth), "}".repeat(depth));
    // Default limits: the unknown field `a` is far over the attributes limit.
    let big_payload = ValidationConfig {
        max_payload_bytes: 1024 * 1024,
        ..ValidationConfig::default()
    };
    assert_eq!(
        whole_reject(objects.as_bytes(), &big_payload).0,
        RejectReason::AttributesTooLarge
    );
    // With room for it, the parser's recursion limit stops it.
    let roomy = ValidationConfig {
        max_payload_bytes: 1024 * 1024,
        max_attributes_bytes: 1024 * 1024,
        ..ValidationConfig::default()
    };
    assert_eq!(
        whole_reject(objects.as_bytes(), &roomy).0,
        RejectReason::TooDeep
    );

    let in_attributes = format!(
        r#"{{"time":"2026-11-27T17:00:00Z","lat":1.5,"lon":2.5,"attributes":{{"x":{}1{}}}}}"#,
        "[".repeat(200),
        "]".repeat(200)
    );
    assert_eq!(reason(in_attributes.as_bytes()), RejectReason::TooDeep);

    // Unbalanced deep nesting is a syntax error, not a crash.
    let open_only = "[".repeat(depth);
    assert_eq!(reason(open_only.as_bytes()), RejectReason::InvalidJson);
}

#[test]
fn huge_numbers() {
    assert_eq!(
        reason(br#"{"time":"2026-11-27T17:00:00Z","lat":1e999999,"lon":2.5}"#),
        RejectReason::NumberOutOfRange
    );
    assert_eq!(
        reason(br#"{"time":1e999999,"lat":1.5,"lon":2.5}"#),
        RejectReason::NumberOutOfRange
    );
    assert_eq!(
        reason(br#"{"time":"2026-11-27T17:00:00Z","lat":1.5,"lon":2.5,"x":-1e999999}"#),
        RejectReason::NumberOutOfRange
    );
    let long_digits = format!(
        r#"{{"time":"2026-11-27T17:00:00Z","lat":1.{},"lon":2.5}}"#,
        "5".repeat(100_000)
    );
    // A very long (but finite) number is just a number.
    let d = run_with(long_digits.as_bytes(), &ValidationConfig::default());
    assert_eq!(d.positions().len(), 1);
    assert_eq!(d.positions()[0].lat, 1.5555555555555556);
}

#[test]
fn million_element_array() {
    let mut payload = String::with_capacity(2_000_002);
    payload.push('[');
    for i in 0..1_000_000 {
        if i > 0 {
            payload.push(',');
        }
        payload.push('1');
    }
    payload.push(']');
    // Default limits: too large before anything is parsed.
    assert_eq!(reason(payload.as_bytes()), RejectReason::TooLarge);
    // With a big enough size limit the element count limit stops it.
    let cfg = ValidationConfig {
        max_payload_bytes: 4 * 1024 * 1024,
        ..ValidationConfig::default()
    };
    let (r, detail) = whole_reject(payload.as_bytes(), &cfg);
    assert_eq!(r, RejectReason::TooManyPoints);
    assert!(detail.contains("10000"), "{detail}");
}

#[test]
fn long_strings_in_details_are_shortened() {
    let long_device = "d".repeat(10_000);
    let d = decode(
        &format!("devices/{long_device}/positions"),
        b"{}",
        None,
        received(),
        &ValidationConfig::default(),
    );
    assert_eq!(d.rejects()[0].reason, RejectReason::BadDeviceId);
    assert!(d.rejects()[0].detail.len() < 300);

    let long_time = format!(
        r#"{{"time":"{}","lat":1.5,"lon":2.5}}"#,
        "9".repeat(100_000)
    );
    let (r, detail) = whole_reject(long_time.as_bytes(), &ValidationConfig::default());
    assert_eq!(r, RejectReason::InvalidTime);
    assert!(detail.len() < 400, "{}", detail.len());
}

#[test]
fn random_bytes_never_panic() {
    // A deterministic xorshift stream: mutations of a valid array, plus pure noise.
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let base = br#"[{"time":"2026-11-27T17:00:00Z","lat":48.85,"lon":2.35,"attributes":{"a":[1,2,{"b":null}]}},{"ts":1795000000000,"latitude":1,"longitude":2}]"#;
    let cfg = ValidationConfig::default();
    for round in 0..20_000 {
        let mut payload = base.to_vec();
        for _ in 0..(1 + next() % 4) {
            let at = (next() as usize) % payload.len();
            match next() % 3 {
                0 => payload[at] = next() as u8,
                1 => payload.truncate(at.max(1)),
                _ => payload.insert(at, b"{[]},:\"0e-"[(next() % 10) as usize]),
            }
        }
        if round % 4 == 0 {
            payload = (0..(next() % 64)).map(|_| next() as u8).collect();
        }
        let d = run_with(&payload, &cfg);
        if let Decoded::Accepted { positions, rejects } = &d {
            assert!(!positions.is_empty() || !rejects.is_empty());
        }
        for r in d.rejects() {
            assert!(!r.detail.is_empty());
        }
    }
}
