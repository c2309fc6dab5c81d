//! The configurable limits against the real ingest: payload size (over the decoder's limit:
//! rejected with a reason; over the packet limit: connection closed), per-device message rate
//! (MQTT 5 "quota exceeded"), connection count, and keep-alive 0 (allowed by the spec).
//! Each refusal is counted in the metrics.

mod security_support;

use std::time::Duration;

use accoreboot_edge::harness::TestDb;
use security_support::{add_account, metric, now_ms, position, start, v4, v5, wait_count};

#[tokio::test(flavor = "multi_thread")]
async fn oversize_payloads_are_rejected_or_cut_off() {
    let db = TestDb::create().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    // Payload limit 1 KiB; packets above 1 KiB + 64 KiB are refused by the codec.
    let ingest = start(&db, &dir, &["--max-payload", "1KiB"]);
    let secret = add_account(&db.url, "dev-1", false);
    let (c, mut ev) = v4::connect(v4::opts("big", ingest.mqtt_port, "dev-1", &secret))
        .await
        .unwrap();
    let padded = format!(
        r#"{{"time": {}, "lat": 1.5, "lon": 2.5, "attributes": {{"pad": "{}"}}}}"#,
        now_ms() - 1000,
        "x".repeat(4000)
    );
    c.publish(
        "devices/dev-1/positions",
        v4::QoS::AtLeastOnce,
        false,
        padded,
    )
    .await
    .unwrap();
    let ack = v4::next_matching(&mut ev, Duration::from_secs(10), |p| {
        matches!(p, v4::Packet::PubAck(_)).then_some(())
    })
    .await;
    assert!(matches!(ack, Ok(Some(()))), "{ack:?}");
    assert_eq!(
        wait_count(
            &db,
            "SELECT count(*) FROM rejects WHERE reason = 'too_large'",
            1
        )
        .await,
        1
    );

    c.publish(
        "devices/dev-1/positions",
        v4::QoS::AtLeastOnce,
        false,
        vec![b' '; 200 * 1024],
    )
    .await
    .unwrap();
    let end = v4::next_matching(&mut ev, Duration::from_secs(10), |p| {
        matches!(p, v4::Packet::PubAck(_)).then_some(())
    })
    .await;
    match end {
        Err(v4::ConnectionError::MqttState(rumqttc::StateError::Deserialization(
            rumqttc::Error::OutgoingPacketTooLarge { .. },
        ))) => {
            panic!("the client refused to send: the server limit was not exercised")
        }
        Err(_) => {}
        Ok(r) => panic!("a packet over the limit must close the connection, got {r:?}"),
    }
    // Others are unaffected.
    let (c2, mut ev2) = v4::connect(v4::opts("small", ingest.mqtt_port, "dev-1", &secret))
        .await
        .unwrap();
    c2.publish(
        "devices/dev-1/positions",
        v4::QoS::AtLeastOnce,
        false,
        position(now_ms() - 500),
    )
    .await
    .unwrap();
    assert!(matches!(
        v4::next_matching(&mut ev2, Duration::from_secs(10), |p| matches!(
            p,
            v4::Packet::PubAck(_)
        )
        .then_some(()))
        .await,
        Ok(Some(()))
    ));
    drop(ingest);
    db.drop_now().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn message_rate_connection_count_and_zero_keepalive() {
    let db = TestDb::create().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ingest = start(
        &db,
        &dir,
        &[
            "--device-message-rate",
            "1",
            "--device-message-burst",
            "3",
            "--max-connections",
            "3",
        ],
    );
    let port = ingest.mqtt_port;
    let secret = add_account(&db.url, "dev-1", false);
    let other = add_account(&db.url, "dev-2", false);

    // Keep-alive 0 is allowed by MQTT and accepted (rumqttc allows it on 3.1.1 only).
    let mut o = v4::opts("dev-1-ka0", port, "dev-1", &secret);
    o.set_keep_alive(Duration::ZERO);
    let (_ka0, _ka0_events) = v4::connect(o).await.expect("keep-alive 0 accepted");
    let (c, mut ev) = v5::connect(v5::opts("dev-1", port, "dev-1", &secret))
        .await
        .expect("device login");

    // 10 messages at once with a burst of 3: the rest get "quota exceeded".
    let t = now_ms() - 60_000;
    for i in 0..10 {
        c.publish(
            "devices/dev-1/positions",
            v5::QoS::AtLeastOnce,
            false,
            position(t + i),
        )
        .await
        .unwrap();
    }
    let mut reasons = Vec::new();
    while reasons.len() < 10 {
        let r = v5::next_matching(&mut ev, Duration::from_secs(10), |p| match p {
            v5::Packet::PubAck(a) => Some(a.reason),
            _ => None,
        })
        .await
        .unwrap()
        .expect("a PUBACK per message");
        reasons.push(r);
    }
    let ok = reasons
        .iter()
        .filter(|r| **r == v5::PubAckReason::Success)
        .count();
    let quota = reasons
        .iter()
        .filter(|r| **r == v5::PubAckReason::QuotaExceeded)
        .count();
    assert!((3..=4).contains(&ok) && ok + quota == 10, "{reasons:?}");
    // Another device has its own budget.
    let (c2, mut ev2) = v5::connect(v5::opts("dev-2", port, "dev-2", &other))
        .await
        .unwrap();
    c2.publish(
        "devices/dev-2/positions",
        v5::QoS::AtLeastOnce,
        false,
        position(t),
    )
    .await
    .unwrap();
    let r = v5::next_matching(&mut ev2, Duration::from_secs(10), |p| match p {
        v5::Packet::PubAck(a) => Some(a.reason),
        _ => None,
    })
    .await
    .unwrap();
    assert_eq!(r, Some(v5::PubAckReason::Success));
    assert!(
        metric(
            &ingest,
            "ingest_mqtt_limit_refusals_total",
            &["device_message_rate"]
        ) >= 6.0
    );

    // Connection limit 3: three are connected, the fourth is refused as "retry later".
    match v4::connect(v4::opts("dev-2c", port, "dev-2", &other)).await {
        Err(v4::ConnectionError::ConnectionRefused(code)) => {
            assert_eq!(code, v4::ConnectReturnCode::ServiceUnavailable)
        }
        other => panic!("fourth connection: {:?}", other.err()),
    }
    assert!(
        metric(
            &ingest,
            "ingest_mqtt_limit_refusals_total",
            &["max_connections"]
        ) >= 1.0
    );
    drop(ingest);
    db.drop_now().await.unwrap();
}
