//! Hostile bytes against the real ingest: garbage on the MQTT port, absurd remaining lengths,
//! truncated packets, a topic that is not UTF-8, JSON bombs, hundreds of silent half-open
//! connections. Each time the offending connection is closed or the payload rejected with a
//! reason, the process stays up, and a well-behaved device still logs in and is acknowledged.

mod security_support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use accoreboot_edge::harness::mqtt_wire::{self, string, varint};
use accoreboot_edge::harness::{Ingest, TestDb};
use security_support::{add_account, metric, now_ms, position, start, v4, wait_count};

/// An MQTT 3.1.1 CONNECT with username and password.
fn connect_packet(client_id: &str, user: &str, pass: &str) -> Vec<u8> {
    mqtt_wire::connect(client_id, Some((user, pass)))
}

/// Reads until the server closes the connection; true when it did within `wait`.
fn closed_within(s: &mut TcpStream, wait: Duration) -> bool {
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let deadline = Instant::now() + wait;
    let mut buf = [0u8; 1024];
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return true,
        }
    }
    false
}

fn raw(ingest: &Ingest) -> TcpStream {
    TcpStream::connect(("127.0.0.1", ingest.mqtt_port)).expect("connect")
}

/// A well-behaved device logs in and gets its PUBACK.
async fn still_serves(ingest: &Ingest, user: &str, secret: &str) {
    let (c, mut ev) = v4::connect(v4::opts(
        &format!("probe-{}", now_ms()),
        ingest.mqtt_port,
        user,
        secret,
    ))
    .await
    .expect("a normal device still logs in");
    c.publish(
        format!("devices/{user}/positions"),
        v4::QoS::AtLeastOnce,
        false,
        position(now_ms() - 1000),
    )
    .await
    .unwrap();
    let ack = v4::next_matching(&mut ev, Duration::from_secs(10), |p| {
        matches!(p, v4::Packet::PubAck(_)).then_some(())
    })
    .await;
    assert!(matches!(ack, Ok(Some(()))), "no PUBACK: {ack:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn garbage_truncated_and_absurd_packets_close_only_their_connection() {
    let db = TestDb::create().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ingest = start(&db, &dir, &["--handshake-timeout", "2s"]);
    let secret = add_account(&db.url, "dev-1", false);

    // Not MQTT at all.
    let mut s = raw(&ingest);
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    assert!(
        closed_within(&mut s, Duration::from_secs(10)),
        "HTTP on the MQTT port must be closed"
    );
    let mut s = raw(&ingest);
    s.write_all(&[0xFF; 512]).unwrap();
    assert!(
        closed_within(&mut s, Duration::from_secs(10)),
        "0xFF bytes must be closed"
    );
    // A CONNECT announcing 256 MiB.
    let mut s = raw(&ingest);
    s.write_all(&[
        0x10, 0xFF, 0xFF, 0xFF, 0x7F, 0, 4, b'M', b'Q', b'T', b'T', 4,
    ])
    .unwrap();
    assert!(
        closed_within(&mut s, Duration::from_secs(10)),
        "absurd length must be closed"
    );
    // A remaining length of five bytes (malformed varint).
    let mut s = raw(&ingest);
    s.write_all(&[0x10, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]).unwrap();
    assert!(
        closed_within(&mut s, Duration::from_secs(10)),
        "malformed varint must be closed"
    );
    // A truncated CONNECT, then silence: closed by the CONNECT timeout.
    let full = connect_packet("trunc", "dev-1", &secret);
    let mut s = raw(&ingest);
    s.write_all(&full[..full.len() / 2]).unwrap();
    assert!(
        closed_within(&mut s, Duration::from_secs(10)),
        "a truncated CONNECT must time out"
    );
    // A truncated CONNECT and the client goes away.
    let mut s = raw(&ingest);
    s.write_all(&full[..7]).unwrap();
    drop(s);

    // A valid login, then a PUBLISH whose topic is not UTF-8.
    let mut s = raw(&ingest);
    s.write_all(&connect_packet("utf8", "dev-1", &secret))
        .unwrap();
    let mut connack = [0u8; 4];
    s.read_exact(&mut connack).unwrap();
    assert_eq!(connack, [0x20, 2, 0, 0], "CONNACK accepted");
    let mut publish = vec![0x32];
    let mut body = Vec::new();
    string(&[b'd', 0xFF, 0xFE, b'/', 0xC0], &mut body);
    body.extend_from_slice(&1u16.to_be_bytes());
    body.extend_from_slice(b"{}");
    varint(body.len(), &mut publish);
    publish.extend(body);
    s.write_all(&publish).unwrap();
    assert!(
        closed_within(&mut s, Duration::from_secs(10)),
        "a non-UTF-8 topic must close the connection"
    );

    still_serves(&ingest, "dev-1", &secret).await;
    drop(ingest);
    db.drop_now().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn silent_and_stalled_connections_are_closed_and_do_not_block_a_real_login() {
    let db = TestDb::create().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ingest = start(&db, &dir, &["--handshake-timeout", "2s"]);
    let secret = add_account(&db.url, "dev-1", false);

    // 300 connections that never speak, 50 that send one byte, 100 that stop in the middle of
    // CONNECT.
    let opened = Instant::now();
    let mut idle = Vec::new();
    for _ in 0..300 {
        idle.push(raw(&ingest));
    }
    let partial = connect_packet("half", "dev-1", &secret);
    for _ in 0..50 {
        let mut s = raw(&ingest);
        s.write_all(&partial[..1]).unwrap();
        idle.push(s);
    }
    for _ in 0..100 {
        let mut s = raw(&ingest);
        s.write_all(&partial[..9]).unwrap();
        idle.push(s);
    }
    // A real device connects and is acknowledged well within its own timeout.
    let started = Instant::now();
    still_serves(&ingest, "dev-1", &secret).await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "login took {:?}",
        started.elapsed()
    );

    // Every one of them is closed by the handshake timeout (2 s from accept), none much later.
    let mut open = 0;
    for s in idle.iter_mut() {
        if !closed_within(s, Duration::from_secs(8).saturating_sub(opened.elapsed())) {
            open += 1;
        }
    }
    assert_eq!(open, 0, "connections without a CONNECT must be closed");
    let closed = metric(
        &ingest,
        "ingest_mqtt_handshake_failures_total",
        &["listener=\"mqtt\"", "reason=\"timeout\""],
    );
    assert!(closed >= 450.0, "the closures are counted: {closed}");
    drop(idle);
    still_serves(&ingest, "dev-1", &secret).await;
    drop(ingest);
    db.drop_now().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_broker_sees_the_device_address_not_the_gate() {
    let db = TestDb::create().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ingest = start(&db, &dir, &[]);
    add_account(&db.url, "dev-1", false);

    let mut s = raw(&ingest);
    let client = s.local_addr().unwrap();
    s.write_all(&connect_packet("addr", "dev-1", "not-the-secret"))
        .unwrap();
    let mut connack = [0u8; 4];
    s.read_exact(&mut connack).unwrap();
    assert_eq!(connack[0], 0x20, "a CONNACK: {connack:?}");
    assert_ne!(connack[3], 0, "refused: {connack:?}");
    let deadline = Instant::now() + Duration::from_secs(10);
    let seen = loop {
        let log = ingest.log();
        if log
            .lines()
            .any(|l| l.contains("bad credentials") && l.contains(&client.to_string()))
        {
            break true;
        }
        if Instant::now() > deadline {
            break false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        seen,
        "the refusal is logged with the client's own address {client}:\n{}",
        ingest.log()
    );
    drop(ingest);
    db.drop_now().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn json_bombs_are_rejected_with_a_reason_and_the_service_stays_up() {
    let db = TestDb::create().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ingest = start(&db, &dir, &["--device-message-rate", "0"]);
    let secret = add_account(&db.url, "dev-1", false);
    let t = now_ms() - 10_000;
    let bombs: Vec<Vec<u8>> = vec![
        // Deep nesting (200k levels, under the 256 KiB payload limit).
        format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)).into_bytes(),
        format!("{}{}", "{\"a\":".repeat(40_000), "}".repeat(40_000)).into_bytes(),
        // Numbers that do not fit any float.
        format!(r#"{{"time": {t}, "lat": 1e999999, "lon": 2.0}}"#).into_bytes(),
        format!(
            r#"{{"time": 1{}, "lat": 1.0, "lon": 2.0}}"#,
            "0".repeat(100_000)
        )
        .into_bytes(),
        // A huge array of non-points.
        format!("[{}0]", "0,".repeat(100_000)).into_bytes(),
        // Not UTF-8 at all.
        vec![0xFF, 0xFE, 0xFD, b'{'],
    ];
    let (c, mut ev) = v4::connect(v4::opts("bomber", ingest.mqtt_port, "dev-1", &secret))
        .await
        .unwrap();
    let mut acked = 0;
    for b in &bombs {
        assert!(
            b.len() < 256 * 1024,
            "keep each bomb under the payload limit"
        );
        c.publish(
            "devices/dev-1/positions",
            v4::QoS::AtLeastOnce,
            false,
            b.clone(),
        )
        .await
        .unwrap();
        let ack = v4::next_matching(&mut ev, Duration::from_secs(20), |p| {
            matches!(p, v4::Packet::PubAck(_)).then_some(())
        })
        .await;
        assert!(
            matches!(ack, Ok(Some(()))),
            "bomb of {} bytes: {ack:?}",
            b.len()
        );
        acked += 1;
    }
    // Each is kept as a reject with its reason; no position was stored.
    assert_eq!(
        wait_count(
            &db,
            "SELECT count(*) FROM rejects WHERE device_id = 'dev-1'",
            acked
        )
        .await,
        acked
    );
    let c2 = db.client().await.unwrap();
    let reasons: Vec<String> = c2
        .query("SELECT DISTINCT reason FROM rejects", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(reasons.iter().all(|r| !r.is_empty()), "{reasons:?}");
    let stored: i64 = c2
        .query_one("SELECT count(*) FROM positions", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, 0, "no bomb may produce a position");
    still_serves(&ingest, "dev-1", &secret).await;
    drop(ingest);
    db.drop_now().await.unwrap();
}
