//! One test per validation rule, each asserting the reject reason, plus the configuration
//! switches and the stable reason names.

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use ingest::position::{decode, Decoded, RejectReason, ValidationConfig};
use serde_json::{json, Value};

fn received() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 27, 18, 0, 0).unwrap()
}

/// A valid point, with `changes` merged in (a `null` change removes the field).
fn point(changes: Value) -> String {
    let mut p = json!({"time": "2026-11-27T17:59:00Z", "lat": 48.85, "lon": 2.35,
        "speed": 10.0, "heading": 90.0, "accuracy": 5.0, "satellites": 8, "battery": 50});
    for (k, v) in changes.as_object().unwrap() {
        if v.is_null() {
            p.as_object_mut().unwrap().remove(k);
        } else {
            p[k] = v.clone();
        }
    }
    p.to_string()
}

fn decode_with(payload: &str, cfg: &ValidationConfig) -> Decoded {
    decode(
        "devices/d1/positions",
        payload.as_bytes(),
        None,
        received(),
        cfg,
    )
}

fn reason_of(changes: Value) -> Option<RejectReason> {
    reason_with(changes, &ValidationConfig::default())
}

/// None when accepted, else the single reject's reason.
fn reason_with(changes: Value, cfg: &ValidationConfig) -> Option<RejectReason> {
    let decoded = decode_with(&point(changes), cfg);
    match decoded {
        Decoded::Accepted { positions, rejects } => {
            assert_eq!(
                positions.len() + rejects.len(),
                1,
                "{positions:?} {rejects:?}"
            );
            rejects.first().map(|r| {
                assert!(!r.detail.is_empty());
                r.reason
            })
        }
        Decoded::Ignored { reason } => panic!("ignored: {reason}"),
    }
}

#[test]
fn the_base_point_is_valid() {
    assert_eq!(reason_of(json!({})), None);
}

#[test]
fn latitude_range() {
    assert_eq!(reason_of(json!({"lat": 90.0})), None);
    assert_eq!(reason_of(json!({"lat": -90.0})), None);
    assert_eq!(
        reason_of(json!({"lat": 90.000001})),
        Some(RejectReason::LatitudeOutOfRange)
    );
    assert_eq!(
        reason_of(json!({"lat": -91})),
        Some(RejectReason::LatitudeOutOfRange)
    );
}

#[test]
fn longitude_range() {
    assert_eq!(reason_of(json!({"lon": 180.0})), None);
    assert_eq!(reason_of(json!({"lon": -180.0})), None);
    assert_eq!(
        reason_of(json!({"lon": 180.5})),
        Some(RejectReason::LongitudeOutOfRange)
    );
    assert_eq!(
        reason_of(json!({"lon": -200})),
        Some(RejectReason::LongitudeOutOfRange)
    );
}

#[test]
fn null_island_is_rejected_unless_allowed() {
    assert_eq!(
        reason_of(json!({"lat": 0, "lon": 0.0})),
        Some(RejectReason::NullIsland)
    );
    // Only both at zero: the equator and the prime meridian are fine.
    assert_eq!(reason_of(json!({"lat": 0, "lon": 1})), None);
    assert_eq!(reason_of(json!({"lat": 1, "lon": 0})), None);
    let cfg = ValidationConfig {
        allow_null_island: true,
        ..ValidationConfig::default()
    };
    assert_eq!(reason_with(json!({"lat": 0, "lon": 0}), &cfg), None);
}

#[test]
fn time_in_future_beyond_max_future() {
    // received 18:00:00; default max_future 5 min
    assert_eq!(reason_of(json!({"time": "2026-11-27T18:05:00Z"})), None);
    assert_eq!(
        reason_of(json!({"time": "2026-11-27T18:05:00.000001Z"})),
        Some(RejectReason::TimeInFuture)
    );
    let cfg = ValidationConfig {
        max_future: Duration::from_secs(3600),
        ..ValidationConfig::default()
    };
    assert_eq!(
        reason_with(json!({"time": "2026-11-27T18:30:00Z"}), &cfg),
        None
    );
}

#[test]
fn time_too_old_beyond_max_past() {
    // 90 days before 2026-11-27T18:00Z is 2026-08-29T18:00Z
    assert_eq!(reason_of(json!({"time": "2026-08-29T18:00:00Z"})), None);
    assert_eq!(
        reason_of(json!({"time": "2026-08-29T17:59:59Z"})),
        Some(RejectReason::TimeTooOld)
    );
    // Epoch seconds sent where milliseconds are expected land in January 1970.
    assert_eq!(
        reason_of(json!({"time": 1_795_000_000})),
        Some(RejectReason::TimeTooOld)
    );
}

#[test]
fn time_that_is_not_rfc3339_or_representable() {
    for bad in [
        json!("yesterday"),
        json!("2026-11-27 18:00:00"),
        json!("2026-13-01T00:00:00Z"),
        json!(""),
        json!(9.0e18),
        json!(i64::MAX),
    ] {
        assert_eq!(
            reason_of(json!({ "time": bad })),
            Some(RejectReason::InvalidTime),
            "{bad}"
        );
    }
    assert_eq!(
        reason_of(json!({"time": true})),
        Some(RejectReason::InvalidField)
    );
}

#[test]
fn speed_range() {
    assert_eq!(reason_of(json!({"speed": 0})), None);
    assert_eq!(reason_of(json!({"speed": 350})), None);
    assert_eq!(
        reason_of(json!({"speed": -0.1})),
        Some(RejectReason::SpeedOutOfRange)
    );
    assert_eq!(
        reason_of(json!({"speed": 350.5})),
        Some(RejectReason::SpeedOutOfRange)
    );
    let cfg = ValidationConfig {
        max_speed: 50.0,
        ..ValidationConfig::default()
    };
    assert_eq!(
        reason_with(json!({"speed": 51}), &cfg),
        Some(RejectReason::SpeedOutOfRange)
    );
}

#[test]
fn heading_is_normalised_not_rejected() {
    for (given, expected) in [(360.0, 0.0), (-90.0, 270.0), (450.0, 90.0), (0.0, 0.0)] {
        let d = decode_with(
            &point(json!({ "heading": given })),
            &ValidationConfig::default(),
        );
        assert_eq!(d.positions()[0].heading, Some(expected), "{given}");
    }
}

#[test]
fn accuracy_must_be_non_negative_and_below_the_optional_max() {
    assert_eq!(reason_of(json!({"accuracy": 0})), None);
    assert_eq!(
        reason_of(json!({"accuracy": -1})),
        Some(RejectReason::AccuracyOutOfRange)
    );
    assert_eq!(reason_of(json!({"accuracy": 5000})), None);
    let cfg = ValidationConfig {
        max_accuracy: Some(100.0),
        ..ValidationConfig::default()
    };
    assert_eq!(
        reason_with(json!({"accuracy": 100.5}), &cfg),
        Some(RejectReason::AccuracyOutOfRange)
    );
}

#[test]
fn satellites_integer_0_to_255() {
    assert_eq!(reason_of(json!({"satellites": 0})), None);
    assert_eq!(reason_of(json!({"satellites": 255})), None);
    for bad in [json!(256), json!(-1), json!(7.5)] {
        assert_eq!(
            reason_of(json!({ "satellites": bad })),
            Some(RejectReason::SatellitesOutOfRange),
            "{bad}"
        );
    }
}

#[test]
fn battery_0_to_100() {
    assert_eq!(reason_of(json!({"battery": 0})), None);
    assert_eq!(reason_of(json!({"battery": 100})), None);
    assert_eq!(
        reason_of(json!({"battery": 101})),
        Some(RejectReason::BatteryOutOfRange)
    );
    assert_eq!(
        reason_of(json!({"battery": -5})),
        Some(RejectReason::BatteryOutOfRange)
    );
}

#[test]
fn missing_required_fields() {
    for field in ["time", "lat", "lon"] {
        let d = decode_with(&point(json!({ field: null })), &ValidationConfig::default());
        assert_eq!(d.rejects()[0].reason, RejectReason::MissingField, "{field}");
        assert!(d.rejects()[0].detail.contains(field), "{field}");
    }
}

#[test]
fn wrong_types_are_invalid_fields() {
    for changes in [
        json!({"lat": "48.85"}),
        json!({"lon": [2.35]}),
        json!({"speed": {"v": 1}}),
        json!({"battery": false}),
        json!({"attributes": [1, 2]}),
        json!({"attributes": "x"}),
    ] {
        assert_eq!(
            reason_of(changes.clone()),
            Some(RejectReason::InvalidField),
            "{changes}"
        );
    }
}

#[test]
fn a_field_and_its_alias_together_are_invalid() {
    assert_eq!(
        reason_of(json!({"latitude": 48.85})),
        Some(RejectReason::InvalidField)
    );
    assert_eq!(
        reason_of(json!({"ts": 1_795_000_000_000_i64})),
        Some(RejectReason::InvalidField)
    );
    // A literally repeated key, too.
    let d = decode_with(
        r#"{"time":"2026-11-27T17:59:00Z","lat":1.5,"lat":1.6,"lon":2.5}"#,
        &ValidationConfig::default(),
    );
    assert_eq!(d.rejects()[0].reason, RejectReason::InvalidField);
}

#[test]
fn attributes_are_bounded() {
    let big = "x".repeat(5000);
    assert_eq!(
        reason_of(json!({"attributes": {"note": big}})),
        Some(RejectReason::AttributesTooLarge)
    );
    // Unknown fields count towards the same limit.
    assert_eq!(
        reason_of(json!({"note": big})),
        Some(RejectReason::AttributesTooLarge)
    );
    let many: serde_json::Map<String, Value> =
        (0..600).map(|i| (format!("k{i}"), json!(i))).collect();
    assert_eq!(
        reason_of(Value::Object(many)),
        Some(RejectReason::AttributesTooLarge)
    );
    assert_eq!(
        reason_of(json!({"attributes": {"note": "x".repeat(3000)}})),
        None
    );
    let cfg = ValidationConfig {
        max_attributes_bytes: 16 * 1024,
        ..ValidationConfig::default()
    };
    assert_eq!(
        reason_with(json!({"attributes": {"note": big}}), &cfg),
        None
    );
}

#[test]
fn attributes_with_nul_characters_are_refused() {
    // PostgreSQL jsonb cannot store U+0000.
    assert_eq!(
        reason_of(json!({"note": "a\u{0}b"})),
        Some(RejectReason::InvalidField)
    );
    assert_eq!(
        reason_of(json!({"attributes": {"deep": [{"k\u{0}": 1}]}})),
        Some(RejectReason::InvalidField)
    );
    // An escaped backslash followed by "u0000" is plain text.
    assert_eq!(reason_of(json!({"note": "\\u0000"})), None);
}

#[test]
fn too_large_payload() {
    let cfg = ValidationConfig {
        max_payload_bytes: 100,
        ..ValidationConfig::default()
    };
    let payload = format!("[{}]", vec![point(json!({})); 3].join(","));
    assert!(payload.len() > 100);
    let d = decode_with(&payload, &cfg);
    assert_eq!(d.rejects()[0].reason, RejectReason::TooLarge);
    // The stored payload is cut to the limit.
    assert_eq!(d.rejects()[0].payload.len(), 100);
}

#[test]
fn too_many_points() {
    let cfg = ValidationConfig {
        max_points: 3,
        ..ValidationConfig::default()
    };
    let three = format!("[{}]", vec![point(json!({})); 3].join(","));
    assert_eq!(decode_with(&three, &cfg).positions().len(), 3);
    let four = format!("[{}]", vec![point(json!({})); 4].join(","));
    let d = decode_with(&four, &cfg);
    assert!(d.positions().is_empty());
    assert_eq!(d.rejects()[0].reason, RejectReason::TooManyPoints);
    assert_eq!(&d.rejects()[0].payload[..], four.as_bytes());
}

#[test]
fn config_reads_humantime_and_defaults() {
    let cfg: ValidationConfig = serde_json::from_value(
        json!({"max_future": "10m", "max_past": "30days", "max_speed": 90.0}),
    )
    .unwrap();
    assert_eq!(cfg.max_future, Duration::from_secs(600));
    assert_eq!(cfg.max_past, Duration::from_secs(30 * 86400));
    assert_eq!(cfg.max_speed, 90.0);
    assert_eq!(cfg.max_points, ValidationConfig::default().max_points);
    let unknown = serde_json::from_value::<ValidationConfig>(json!({"max_sped": 1}));
    assert!(unknown.is_err());
    let d = ValidationConfig::default();
    assert_eq!(d.max_future, Duration::from_secs(300));
    assert_eq!(d.max_past, Duration::from_secs(90 * 86400));
    assert_eq!(d.max_payload_bytes, 256 * 1024);
    assert_eq!(d.max_points, 10_000);
    assert_eq!(d.max_attributes_bytes, 4096);
    assert!(!d.allow_null_island);
}

#[test]
fn config_example_of_the_docs_is_the_default() {
    let example = r#"{"allow_null_island": false, "max_speed": 350.0, "max_accuracy": null,
 "max_future": "5m", "max_past": "90days", "max_payload_bytes": 262144,
 "max_points": 10000, "max_attributes_bytes": 4096, "teltonika": true}"#;
    let docs = include_str!("../../docs/payloads.md");
    assert!(docs.contains(example), "docs/payloads.md example changed");
    let cfg: ValidationConfig = serde_json::from_str(example).unwrap();
    assert_eq!(cfg, ValidationConfig::default());
}

#[test]
fn reason_names_and_codes_are_stable() {
    let names: Vec<&str> = RejectReason::ALL.iter().map(|r| r.as_str()).collect();
    assert_eq!(
        names,
        vec![
            "unknown_topic",
            "bad_device_id",
            "topic_identity_mismatch",
            "empty_payload",
            "too_large",
            "invalid_utf8",
            "invalid_json",
            "too_deep",
            "number_out_of_range",
            "not_an_object",
            "too_many_points",
            "missing_field",
            "invalid_field",
            "invalid_time",
            "latitude_out_of_range",
            "longitude_out_of_range",
            "null_island",
            "time_in_future",
            "time_too_old",
            "speed_out_of_range",
            "accuracy_out_of_range",
            "satellites_out_of_range",
            "battery_out_of_range",
            "attributes_too_large",
            "corrupt_record",
            "database_rejected",
        ]
    );
    for (i, r) in RejectReason::ALL.iter().enumerate() {
        assert_eq!(usize::from(r.code()), i + 1);
        assert_eq!(RejectReason::from_code(r.code()), Some(*r));
        assert_eq!(RejectReason::from_name(r.as_str()), Some(*r));
        assert_eq!(r.to_string(), r.as_str());
        assert_eq!(serde_json::to_value(r).unwrap(), json!(r.as_str()));
    }
    assert_eq!(RejectReason::from_code(0), None);
    assert_eq!(RejectReason::from_code(200), None);
}
