//! Every accepted payload format, with real-looking messages: project JSON (single point and
//! offline-buffer arrays), OwnTracks, Teltonika Codec JSON; units, aliases, time forms and
//! device identity.

use chrono::{DateTime, TimeZone, Utc};
use ingest::position::{decode, Decoded, Position, RejectReason, ValidationConfig};
use serde_json::json;

fn received() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 27, 18, 0, 0).unwrap()
}

fn run(topic: &str, payload: &str, identity: Option<&str>) -> Decoded {
    decode(
        topic,
        payload.as_bytes(),
        identity,
        received(),
        &ValidationConfig::default(),
    )
}

fn one_position(decoded: Decoded) -> Position {
    match decoded {
        Decoded::Accepted { positions, rejects } => {
            assert!(rejects.is_empty(), "unexpected rejects: {rejects:?}");
            assert_eq!(positions.len(), 1, "{positions:?}");
            positions.into_iter().next().unwrap()
        }
        other => panic!("expected one position, got {other:?}"),
    }
}

fn one_reject(decoded: &Decoded) -> RejectReason {
    assert!(decoded.positions().is_empty(), "{decoded:?}");
    assert_eq!(decoded.rejects().len(), 1, "{decoded:?}");
    decoded.rejects()[0].reason
}

#[test]
fn project_single_point_with_every_field() {
    let payload = r#"{"time":"2026-11-27T17:59:30.123456789Z","lat":48.8566,"lon":2.3522,
        "alt":35.5,"speed":12.5,"heading":270,"accuracy":4.2,"satellites":9,"battery":87,
        "attributes":{"ignition":true,"odometer_km":12345.6}}"#;
    let p = one_position(run("devices/truck-042/positions", payload, None));
    assert_eq!(p.device_id, "truck-042");
    // Nanoseconds are truncated to microseconds.
    assert_eq!(
        p.time,
        DateTime::parse_from_rfc3339("2026-11-27T17:59:30.123456Z").unwrap()
    );
    assert_eq!((p.lat, p.lon), (48.8566, 2.3522));
    assert_eq!(p.alt, Some(35.5));
    assert_eq!(p.speed, Some(12.5));
    assert_eq!(p.heading, Some(270.0));
    assert_eq!(p.accuracy, Some(4.2));
    assert_eq!(p.satellites, Some(9));
    assert_eq!(p.battery, Some(87.0));
    assert_eq!(
        p.attributes,
        Some(json!({"ignition": true, "odometer_km": 12345.6}))
    );
}

#[test]
fn project_minimal_point_has_no_optional_fields() {
    let p = one_position(run(
        "devices/d1/positions",
        r#"{"time":"2026-11-27T17:00:00Z","lat":-33.8688,"lon":151.2093}"#,
        None,
    ));
    assert_eq!(
        p.time,
        Utc.with_ymd_and_hms(2026, 11, 27, 17, 0, 0).unwrap()
    );
    assert_eq!(
        (
            p.alt,
            p.speed,
            p.heading,
            p.accuracy,
            p.satellites,
            p.battery
        ),
        (None, None, None, None, None, None)
    );
    assert_eq!(p.attributes, None);
}

#[test]
fn project_epoch_millis_and_aliases() {
    let ms = received().timestamp_millis() - 1_500;
    let payload = format!(r#"{{"ts":{ms},"latitude":45.764,"longitude":4.8357}}"#);
    let p = one_position(run("devices/d1/positions", &payload, None));
    assert_eq!(p.time.timestamp_millis(), ms);
    assert_eq!((p.lat, p.lon), (45.764, 4.8357));
}

#[test]
fn project_fractional_epoch_millis_keep_microseconds() {
    let ms = received().timestamp_millis() - 10_000;
    let payload = format!(r#"{{"time":{ms}.25,"lat":45.0,"lon":4.0}}"#);
    let p = one_position(run("devices/d1/positions", &payload, None));
    assert_eq!(p.time.timestamp_micros(), ms * 1000 + 250);
}

#[test]
fn project_rfc3339_with_offset_is_converted_to_utc() {
    let p = one_position(run(
        "devices/d1/positions",
        r#"{"time":"2026-11-27T19:30:00+02:00","lat":1.5,"lon":2.5}"#,
        None,
    ));
    assert_eq!(
        p.time,
        Utc.with_ymd_and_hms(2026, 11, 27, 17, 30, 0).unwrap()
    );
}

#[test]
fn project_unknown_fields_go_to_attributes_and_explicit_attributes_win() {
    let p = one_position(run(
        "devices/d1/positions",
        r#"{"time":"2026-11-27T17:00:00Z","lat":1.5,"lon":2.5,"fuel":41.5,
            "driver":{"id":"D7"},"mode":"x","attributes":{"mode":"eco"}}"#,
        None,
    ));
    assert_eq!(
        p.attributes,
        Some(json!({"fuel": 41.5, "driver": {"id": "D7"}, "mode": "eco"}))
    );
}

#[test]
fn project_null_optional_fields_count_as_absent() {
    let p = one_position(run(
        "devices/d1/positions",
        r#"{"time":"2026-11-27T17:00:00Z","lat":1.5,"lon":2.5,"alt":null,"speed":null,"attributes":null}"#,
        None,
    ));
    assert_eq!((p.alt, p.speed, p.attributes), (None, None, None));
}

#[test]
fn project_offline_buffer_array_keeps_order_and_rejects_only_bad_points() {
    let payload = r#"[
        {"time":"2026-11-27T17:00:00Z","lat":48.1,"lon":2.1,"speed":3},
        {"time":"2026-11-27T17:00:10Z","lat":95.0,"lon":2.1},
        {"time":"2026-11-27T17:00:20Z","lat":48.2,"lon":2.2},
        {"time":"2026-11-27T17:00:30Z","lon":2.3},
        {"time":"2026-11-27T17:00:40Z","lat":48.4,"lon":2.4}
    ]"#;
    let decoded = run("devices/bus-7/positions", payload, None);
    let Decoded::Accepted { positions, rejects } = decoded else {
        panic!("expected Accepted")
    };
    let lats: Vec<f64> = positions.iter().map(|p| p.lat).collect();
    assert_eq!(lats, vec![48.1, 48.2, 48.4]);
    assert!(positions.iter().all(|p| p.device_id == "bus-7"));
    let reasons: Vec<RejectReason> = rejects.iter().map(|r| r.reason).collect();
    assert_eq!(
        reasons,
        vec![RejectReason::LatitudeOutOfRange, RejectReason::MissingField]
    );
    // Each reject carries the JSON of its own element, not the whole message.
    let bad: serde_json::Value = serde_json::from_slice(&rejects[0].payload).unwrap();
    assert_eq!(bad["lat"], json!(95.0));
    let missing: serde_json::Value = serde_json::from_slice(&rejects[1].payload).unwrap();
    assert_eq!(missing, json!({"time":"2026-11-27T17:00:30Z","lon":2.3}));
    assert!(rejects
        .iter()
        .all(|r| r.device_id.as_deref() == Some("bus-7")));
    assert!(rejects.iter().all(|r| r.topic == "devices/bus-7/positions"));
}

#[test]
fn project_array_element_that_is_not_an_object_is_rejected_alone() {
    let decoded = run(
        "devices/d1/positions",
        r#"[{"time":"2026-11-27T17:00:00Z","lat":1.5,"lon":2.5}, 42, "x", [1]]"#,
        None,
    );
    assert_eq!(decoded.positions().len(), 1);
    let reasons: Vec<RejectReason> = decoded.rejects().iter().map(|r| r.reason).collect();
    assert_eq!(reasons, vec![RejectReason::NotAnObject; 3]);
    assert_eq!(&decoded.rejects()[0].payload[..], b"42");
}

#[test]
fn empty_array_is_ignored() {
    assert_eq!(
        run("devices/d1/positions", " [ ] ", None),
        Decoded::Ignored {
            reason: "empty_array"
        }
    );
}

#[test]
fn owntracks_location_converts_units() {
    let tst = received().timestamp() - 60;
    let payload = format!(
        r#"{{"_type":"location","tid":"ph","lat":52.5200,"lon":13.4050,"tst":{tst},
            "acc":12,"alt":48,"vac":3,"vel":36,"cog":90,"batt":64,"bs":1,"conn":"m",
            "t":"u","created_at":{tst}}}"#
    );
    let p = one_position(run("owntracks/alice/phone", &payload, None));
    assert_eq!(p.device_id, "alice/phone");
    assert_eq!(p.time.timestamp(), tst);
    assert_eq!((p.lat, p.lon), (52.52, 13.405));
    assert_eq!(p.accuracy, Some(12.0));
    assert_eq!(p.alt, Some(48.0));
    // 36 km/h = 10 m/s
    assert!((p.speed.unwrap() - 10.0).abs() < 1e-9, "{:?}", p.speed);
    assert_eq!(p.heading, Some(90.0));
    assert_eq!(p.battery, Some(64.0));
    let attributes = p.attributes.unwrap();
    assert_eq!(attributes["vac"], json!(3));
    assert_eq!(attributes["tid"], json!("ph"));
    assert_eq!(attributes["conn"], json!("m"));
    assert_eq!(attributes["t"], json!("u"));
    assert_eq!(attributes["created_at"], json!(tst));
    assert!(attributes.get("_type").is_none());
}

#[test]
fn owntracks_minimal_location_with_zero_fields_omitted() {
    let tst = received().timestamp() - 5;
    let payload = format!(r#"{{"_type":"location","lat":-22.9068,"lon":-43.1729,"tst":{tst}}}"#);
    let p = one_position(run("owntracks/bob/tablet", &payload, None));
    assert_eq!(p.speed, None);
    assert_eq!(p.attributes, None);
}

#[test]
fn owntracks_non_location_types_are_ignored() {
    for (kind, reason) in [
        ("lwt", "owntracks_lwt"),
        ("transition", "owntracks_transition"),
        ("card", "owntracks_card"),
        ("status", "owntracks_status"),
        ("waypoints", "owntracks_waypoints"),
        ("something_new", "owntracks_other_type"),
    ] {
        let payload = format!(r#"{{"_type":"{kind}","tst":1700000000}}"#);
        assert_eq!(
            run("owntracks/alice/phone", &payload, None),
            Decoded::Ignored { reason },
            "{kind}"
        );
    }
}

#[test]
fn owntracks_subtopics_are_ignored() {
    let decoded = run(
        "owntracks/alice/phone/event",
        r#"{"_type":"transition","event":"enter"}"#,
        None,
    );
    assert_eq!(
        decoded,
        Decoded::Ignored {
            reason: "owntracks_subtopic"
        }
    );
}

#[test]
fn owntracks_missing_type_or_tst_is_rejected() {
    let no_type = run("owntracks/a/b", r#"{"lat":1.5,"lon":2.5,"tst":1}"#, None);
    assert_eq!(one_reject(&no_type), RejectReason::MissingField);
    let no_tst = run(
        "owntracks/a/b",
        r#"{"_type":"location","lat":1.5,"lon":2.5}"#,
        None,
    );
    assert_eq!(one_reject(&no_tst), RejectReason::MissingField);
    assert!(no_tst.rejects()[0].detail.contains("tst"));
}

#[test]
fn owntracks_encrypted_payload_is_rejected_with_a_hint() {
    let d = run(
        "owntracks/a/b",
        r#"{"_type":"encrypted","data":"c2VjcmV0"}"#,
        None,
    );
    assert_eq!(one_reject(&d), RejectReason::InvalidField);
    assert!(d.rejects()[0].detail.contains("encryption"));
}

#[test]
fn owntracks_array_skips_non_location_messages() {
    let tst = received().timestamp() - 5;
    let payload = format!(
        r#"[{{"_type":"lwt","tst":{tst}}},{{"_type":"location","lat":1.5,"lon":2.5,"tst":{tst}}}]"#
    );
    let d = run("owntracks/a/b", &payload, None);
    assert_eq!(d.positions().len(), 1);
    assert!(d.rejects().is_empty());
}

#[test]
fn teltonika_codec_json() {
    let ts = received().timestamp_millis() - 30_000;
    let payload = format!(
        r#"{{"state":{{"reported":{{"ts":{ts},"pr":0,"latlng":"54.687157,25.279652",
            "alt":112,"ang":350,"sat":11,"sp":72,"evt":0,"239":1,"66":12880}}}}}}"#
    );
    let p = one_position(run("352093081452251/data", &payload, None));
    assert_eq!(p.device_id, "352093081452251");
    assert_eq!(p.time.timestamp_millis(), ts);
    assert_eq!((p.lat, p.lon), (54.687157, 25.279652));
    assert_eq!(p.alt, Some(112.0));
    assert_eq!(p.heading, Some(350.0));
    assert_eq!(p.satellites, Some(11));
    assert!((p.speed.unwrap() - 20.0).abs() < 1e-9);
    let attributes = p.attributes.unwrap();
    assert_eq!(attributes["239"], json!(1));
    assert_eq!(attributes["66"], json!(12880));
    assert_eq!(attributes["pr"], json!(0));
}

#[test]
fn teltonika_without_fix_is_null_island() {
    let ts = received().timestamp_millis();
    let payload =
        format!(r#"{{"state":{{"reported":{{"ts":{ts},"latlng":"0.000000,0.000000","sat":0}}}}}}"#);
    let d = run("352093081452251/data", &payload, None);
    assert_eq!(one_reject(&d), RejectReason::NullIsland);
}

#[test]
fn teltonika_bad_latlng_and_missing_state() {
    let ts = received().timestamp_millis();
    let bad = format!(r#"{{"state":{{"reported":{{"ts":{ts},"latlng":"54.68;25.27"}}}}}}"#);
    assert_eq!(
        one_reject(&run("352093081452251/data", &bad, None)),
        RejectReason::InvalidField
    );
    let nan = format!(r#"{{"state":{{"reported":{{"ts":{ts},"latlng":"NaN,1"}}}}}}"#);
    assert_eq!(
        one_reject(&run("352093081452251/data", &nan, None)),
        RejectReason::InvalidField
    );
    assert_eq!(
        one_reject(&run("352093081452251/data", r#"{"reported":{}}"#, None)),
        RejectReason::MissingField
    );
}

#[test]
fn teltonika_can_be_switched_off() {
    let cfg = ValidationConfig {
        teltonika: false,
        ..ValidationConfig::default()
    };
    let d = decode("352093081452251/data", b"{}", None, received(), &cfg);
    assert_eq!(one_reject(&d), RejectReason::UnknownTopic);
}

#[test]
fn authenticated_identity_must_match_the_topic() {
    let payload = r#"{"time":"2026-11-27T17:00:00Z","lat":1.5,"lon":2.5}"#;
    let p = one_position(run("devices/d1/positions", payload, Some("d1")));
    assert_eq!(p.device_id, "d1");

    let d = run("devices/d2/positions", payload, Some("d1"));
    assert_eq!(one_reject(&d), RejectReason::TopicIdentityMismatch);
    let reject = &d.rejects()[0];
    assert_eq!(reject.device_id.as_deref(), Some("d1"));
    assert_eq!(&reject.payload[..], payload.as_bytes());
}

#[test]
fn owntracks_identity_may_be_user_or_user_slash_device() {
    let tst = received().timestamp() - 5;
    let payload = format!(r#"{{"_type":"location","lat":1.5,"lon":2.5,"tst":{tst}}}"#);
    let p = one_position(run("owntracks/alice/phone", &payload, Some("alice")));
    assert_eq!(p.device_id, "alice");
    let p = one_position(run("owntracks/alice/phone", &payload, Some("alice/phone")));
    assert_eq!(p.device_id, "alice/phone");
    let d = run("owntracks/alice/phone", &payload, Some("bob"));
    assert_eq!(one_reject(&d), RejectReason::TopicIdentityMismatch);
    let d = run("owntracks/alice/phone", &payload, Some("alice/tablet"));
    assert_eq!(one_reject(&d), RejectReason::TopicIdentityMismatch);
    // A subtopic of another device is a mismatch too, even though it would be ignored.
    let d = run("owntracks/bob/phone/event", "{}", Some("alice"));
    assert_eq!(one_reject(&d), RejectReason::TopicIdentityMismatch);
}

#[test]
fn teltonika_identity_must_match_the_imei() {
    let d = run("352093081452251/data", "{}", Some("352093081452999"));
    assert_eq!(one_reject(&d), RejectReason::TopicIdentityMismatch);
}

#[test]
fn unknown_topics_are_rejected_without_device() {
    for topic in [
        "devices/d1",
        "devices/d1/positions/extra",
        "devices//positions",
        "owntracks/alice",
        "other/thing",
        "",
        "d1/data/x",
    ] {
        let d = run(topic, "{}", None);
        let reason = one_reject(&d);
        assert!(
            matches!(
                reason,
                RejectReason::UnknownTopic | RejectReason::BadDeviceId
            ),
            "{topic:?}: {reason:?}"
        );
        assert_eq!(d.rejects()[0].device_id, None);
        assert_eq!(d.rejects()[0].topic, topic);
    }
    assert_eq!(
        one_reject(&run("other/thing", "{}", None)),
        RejectReason::UnknownTopic
    );
}

#[test]
fn bad_device_ids_are_rejected() {
    let long = "x".repeat(65);
    for topic in [
        "devices/d 1/positions".to_owned(),
        "devices/d\u{e9}/positions".to_owned(),
        "devices//positions".to_owned(),
        format!("devices/{long}/positions"),
        "owntracks/al ice/phone".to_owned(),
        format!("owntracks/{}/{}", "a".repeat(40), "b".repeat(30)),
        "owntracks//phone".to_owned(),
    ] {
        let d = run(&topic, "{}", None);
        assert_eq!(one_reject(&d), RejectReason::BadDeviceId, "{topic}");
    }
    let ok = "A.b_c:d-9".to_owned() + &"x".repeat(55);
    assert_eq!(ok.len(), 64);
    let p = one_position(run(
        &format!("devices/{ok}/positions"),
        r#"{"time":"2026-11-27T17:00:00Z","lat":1.5,"lon":2.5}"#,
        None,
    ));
    assert_eq!(p.device_id, ok);
    // An identity that is not a device id is refused as well.
    let d = run("devices/d1/positions", "{}", Some("d1 "));
    assert_eq!(one_reject(&d), RejectReason::BadDeviceId);
}
