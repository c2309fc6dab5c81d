//! The topic ACL end to end: a device publishing on another device's topic or subscribing to
//! `#` is refused (MQTT 5 reason codes; on 3.1.1 a closed connection or a failed SUBACK) and
//! nothing is stored; a service account receives positions through a shared subscription,
//! sends commands to a device, and cannot publish positions.

mod security_support;

use std::time::Duration;

use accoreboot_edge::harness::TestDb;
use security_support::{add_account, metric, now_ms, position, start, v4, v5, wait_count};

#[tokio::test(flavor = "multi_thread")]
async fn devices_stay_on_their_own_topics_and_services_read_positions() {
    let db = TestDb::create().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ingest = start(&db, &dir, &[]);
    let port = ingest.mqtt_port;
    let dev1 = add_account(&db.url, "dev-1", false);
    add_account(&db.url, "dev-2", false);
    let backend = add_account(&db.url, "backend", true);

    // The service subscribes to the position stream through a shared subscription.
    let (svc, mut svc_events) = v5::connect(v5::opts("backend-1", port, "backend", &backend))
        .await
        .expect("service login");
    svc.subscribe("$share/backend/devices/+/positions", v5::QoS::AtLeastOnce)
        .await
        .unwrap();
    let granted = v5::next_matching(&mut svc_events, Duration::from_secs(10), |p| match p {
        v5::Packet::SubAck(s) => Some(s.return_codes.clone()),
        _ => None,
    })
    .await
    .unwrap()
    .expect("SUBACK");
    assert!(
        matches!(granted[0], v5::SubscribeReasonCode::Success(_)),
        "{granted:?}"
    );
    // A service may not subscribe to everything.
    svc.subscribe("#", v5::QoS::AtLeastOnce).await.unwrap();
    let refused = v5::next_matching(&mut svc_events, Duration::from_secs(10), |p| match p {
        v5::Packet::SubAck(s) => Some(s.return_codes.clone()),
        _ => None,
    })
    .await
    .unwrap()
    .expect("SUBACK");
    assert_eq!(refused, vec![v5::SubscribeReasonCode::NotAuthorized]);

    // dev-1 (MQTT 5): its own topic is acknowledged, dev-2's topic is refused with 0x87.
    let (d1, mut d1_events) = v5::connect(v5::opts("dev-1", port, "dev-1", &dev1))
        .await
        .expect("device login");
    let t = now_ms() - 5_000;
    d1.publish(
        "devices/dev-1/positions",
        v5::QoS::AtLeastOnce,
        false,
        position(t),
    )
    .await
    .unwrap();
    let ack = v5::next_matching(&mut d1_events, Duration::from_secs(10), |p| match p {
        v5::Packet::PubAck(a) => Some(a.reason),
        _ => None,
    })
    .await
    .unwrap();
    assert_eq!(ack, Some(v5::PubAckReason::Success));
    d1.publish(
        "devices/dev-2/positions",
        v5::QoS::AtLeastOnce,
        false,
        position(t + 1),
    )
    .await
    .unwrap();
    let ack = v5::next_matching(&mut d1_events, Duration::from_secs(10), |p| match p {
        v5::Packet::PubAck(a) => Some(a.reason),
        _ => None,
    })
    .await
    .unwrap();
    assert_eq!(ack, Some(v5::PubAckReason::NotAuthorized));

    // The service received dev-1's position, never the refused one.
    let got = v5::next_matching(&mut svc_events, Duration::from_secs(10), |p| match p {
        v5::Packet::Publish(p) => Some(String::from_utf8_lossy(&p.topic).into_owned()),
        _ => None,
    })
    .await
    .unwrap();
    assert_eq!(got.as_deref(), Some("devices/dev-1/positions"));

    // dev-1 may not subscribe to `#` nor to another device's commands; its own commands are fine.
    d1.subscribe("#", v5::QoS::AtLeastOnce).await.unwrap();
    d1.subscribe("devices/dev-2/commands", v5::QoS::AtLeastOnce)
        .await
        .unwrap();
    d1.subscribe("devices/dev-1/commands", v5::QoS::AtLeastOnce)
        .await
        .unwrap();
    let mut codes = Vec::new();
    while codes.len() < 3 {
        let c = v5::next_matching(&mut d1_events, Duration::from_secs(10), |p| match p {
            v5::Packet::SubAck(s) => Some(s.return_codes[0]),
            _ => None,
        })
        .await
        .unwrap()
        .expect("SUBACK");
        codes.push(c);
    }
    assert_eq!(codes[0], v5::SubscribeReasonCode::NotAuthorized);
    assert_eq!(codes[1], v5::SubscribeReasonCode::NotAuthorized);
    assert!(matches!(codes[2], v5::SubscribeReasonCode::Success(_)));

    // The service sends a command to dev-1, which receives it; a position from the service is refused.
    svc.publish(
        "devices/dev-1/commands",
        v5::QoS::AtLeastOnce,
        false,
        r#"{"cmd":"ping"}"#,
    )
    .await
    .unwrap();
    // (rumqttc sends only while its event loop is polled.)
    let ack = v5::next_matching(&mut svc_events, Duration::from_secs(10), |p| match p {
        v5::Packet::PubAck(a) => Some(a.reason),
        _ => None,
    })
    .await
    .unwrap();
    assert!(
        matches!(
            ack,
            Some(v5::PubAckReason::Success | v5::PubAckReason::NoMatchingSubscribers)
        ),
        "{ack:?}"
    );
    let cmd = v5::next_matching(&mut d1_events, Duration::from_secs(10), |p| match p {
        v5::Packet::Publish(p) => Some(p.payload.to_vec()),
        _ => None,
    })
    .await
    .unwrap();
    assert_eq!(cmd.as_deref(), Some(&br#"{"cmd":"ping"}"#[..]));
    svc.publish(
        "devices/dev-2/positions",
        v5::QoS::AtLeastOnce,
        false,
        position(t + 2),
    )
    .await
    .unwrap();
    let ack = v5::next_matching(&mut svc_events, Duration::from_secs(10), |p| match p {
        v5::Packet::PubAck(a) if a.reason != v5::PubAckReason::Success => Some(a.reason),
        _ => None,
    })
    .await
    .unwrap();
    assert_eq!(ack, Some(v5::PubAckReason::NotAuthorized));

    // MQTT 3.1.1 has no negative PUBACK: a foreign publish closes the connection, `#` gets 0x80.
    let (d1v4, mut d1v4_events) = v4::connect(v4::opts("dev-1-v4", port, "dev-1", &dev1))
        .await
        .unwrap();
    d1v4.subscribe("#", v4::QoS::AtLeastOnce).await.unwrap();
    let suback = v4::next_matching(&mut d1v4_events, Duration::from_secs(10), |p| match p {
        v4::Packet::SubAck(s) => Some(s.return_codes.clone()),
        _ => None,
    })
    .await
    .unwrap()
    .expect("SUBACK");
    assert_eq!(suback, vec![rumqttc::SubscribeReasonCode::Failure]);
    d1v4.publish(
        "devices/dev-2/positions",
        v4::QoS::AtLeastOnce,
        false,
        position(t + 3),
    )
    .await
    .unwrap();
    let end = v4::next_matching(&mut d1v4_events, Duration::from_secs(10), |p| {
        matches!(p, v4::Packet::PubAck(_)).then_some(())
    })
    .await;
    assert!(
        end.is_err(),
        "a refused publish must close a 3.1.1 connection, not be acknowledged: {end:?}"
    );

    // Only dev-1's own point was stored, under dev-1; nothing for dev-2, no command in rejects.
    assert_eq!(
        wait_count(
            &db,
            "SELECT count(*) FROM positions WHERE device_id = 'dev-1'",
            1
        )
        .await,
        1
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let c = db.client().await.unwrap();
    let other: i64 = c
        .query_one(
            "SELECT count(*) FROM positions WHERE device_id <> 'dev-1'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let rejects: i64 = c
        .query_one("SELECT count(*) FROM rejects", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!((other, rejects), (0, 0));
    assert!(
        metric(
            &ingest,
            "ingest_mqtt_acl_denied_total",
            &["publish", "kind=\"device\""]
        ) >= 2.0
    );
    assert!(metric(&ingest, "ingest_mqtt_acl_denied_total", &["subscribe"]) >= 4.0);
    drop(ingest);
    db.drop_now().await.unwrap();
}
