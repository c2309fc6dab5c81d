//! Device identity end to end, against the real ingest and the real database: CONNACK
//! refusals for wrong, unknown, missing and disabled credentials (MQTT 3.1.1 and 5, rumqttc
//! and mosquitto_pub), sessions closed when their account is disabled or its secret rotated,
//! and the `ingest device` command's answers to bad input.

mod security_support;

use std::time::Duration;

use accoreboot_edge::harness::TestDb;
use security_support::{
    add_account, device_cmd, metric, now_ms, position, secret_from, start, v4, v5, wait_count,
};

#[tokio::test(flavor = "multi_thread")]
async fn wrong_unknown_missing_and_disabled_credentials_are_refused_with_connack() {
    let db = TestDb::create().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ingest = start(&db, &dir, &[]);
    let secret = add_account(&db.url, "dev-1", false);
    let port = ingest.mqtt_port;

    // MQTT 3.1.1: bad password and unknown device both say "bad user name or password".
    for (user, pass) in [
        ("dev-1", "wrong"),
        ("nobody", secret.as_str()),
        ("dev-1", ""),
    ] {
        match v4::connect(v4::opts("c-bad", port, user, pass)).await {
            Err(v4::ConnectionError::ConnectionRefused(code)) => {
                assert_eq!(code, v4::ConnectReturnCode::BadUserNamePassword, "{user}")
            }
            Err(e) => panic!("expected a CONNACK refusal for {user}, got {e:?}"),
            Ok(_) => panic!("{user} with a wrong secret was let in"),
        }
    }
    // MQTT 5 the same, with its own reason code.
    match v5::connect(v5::opts("c-bad5", port, "dev-1", "wrong")).await {
        Err(v5::ConnectionError::ConnectionRefused(code)) => {
            assert_eq!(code, v5::ConnectReturnCode::BadUserNamePassword)
        }
        other => panic!("expected a CONNACK refusal, got {:?}", other.err()),
    }
    // No credentials at all: not authorized (anonymous access is off).
    let mut anon = v4::MqttOptions::new("c-anon", "127.0.0.1", port);
    anon.set_keep_alive(Duration::from_secs(30));
    match v4::connect(anon).await {
        Err(v4::ConnectionError::ConnectionRefused(code)) => {
            assert_eq!(code, v4::ConnectReturnCode::NotAuthorized)
        }
        other => panic!("anonymous login: {:?}", other.err()),
    }
    // mosquitto_pub (Debian's client) is refused too, and says why.
    let out = std::process::Command::new("mosquitto_pub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-u",
            "dev-1",
            "-P",
            "wrong",
            "-t",
            "devices/dev-1/positions",
            "-m",
            "{}",
            "-q",
            "1",
        ])
        .output()
        .expect("mosquitto_pub installed");
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr).to_lowercase();
    assert!(said.contains("bad user name or password"), "{said}");

    // The right secret works, and the stored position carries the authenticated id.
    let (client, mut events) = v4::connect(v4::opts("c-ok", port, "dev-1", &secret))
        .await
        .expect("right secret accepted");
    client
        .publish(
            "devices/dev-1/positions",
            v4::QoS::AtLeastOnce,
            false,
            position(now_ms() - 1000),
        )
        .await
        .unwrap();
    let acked = v4::next_matching(&mut events, Duration::from_secs(10), |p| {
        matches!(p, v4::Packet::PubAck(_)).then_some(())
    })
    .await
    .unwrap();
    assert!(acked.is_some(), "no PUBACK");
    assert_eq!(
        wait_count(
            &db,
            "SELECT count(*) FROM positions WHERE device_id = 'dev-1'",
            1
        )
        .await,
        1
    );

    // Disable while connected: the session is closed within seconds...
    let (ok, out, _) = device_cmd(&db.url, &["disable", "dev-1"]);
    assert!(ok && out.contains("disabled dev-1"), "{out}");
    let closed = v4::next_matching(&mut events, Duration::from_secs(15), |_| None::<()>).await;
    assert!(
        closed.is_err(),
        "the session of a disabled device must be closed"
    );
    // ...and a reconnect is refused: not authorized.
    match v4::connect(v4::opts("c-ok", port, "dev-1", &secret)).await {
        Err(v4::ConnectionError::ConnectionRefused(code)) => {
            assert_eq!(code, v4::ConnectReturnCode::NotAuthorized)
        }
        other => panic!("disabled device reconnect: {:?}", other.err()),
    }
    assert!(metric(&ingest, "ingest_mqtt_sessions_kicked_total", &["disabled"]) >= 1.0);
    assert!(metric(&ingest, "ingest_mqtt_auth_total", &["bad_credentials"]) >= 4.0);
    assert!(metric(&ingest, "ingest_mqtt_auth_total", &["disabled"]) >= 1.0);

    // Enable again, then rotate: the old secret's session is closed and the old secret refused.
    assert!(device_cmd(&db.url, &["enable", "dev-1"]).0);
    let (_c, mut events) = v4::connect(v4::opts("c-ok", port, "dev-1", &secret))
        .await
        .expect("enabled again");
    let (ok, out, _) = device_cmd(&db.url, &["rotate-secret", "dev-1"]);
    assert!(ok, "{out}");
    let new_secret = secret_from(&out);
    assert_ne!(new_secret, secret);
    assert!(
        v4::next_matching(&mut events, Duration::from_secs(15), |_| None::<()>)
            .await
            .is_err(),
        "old-secret session closed"
    );
    assert!(
        v4::connect(v4::opts("c-old", port, "dev-1", &secret))
            .await
            .is_err(),
        "old secret refused"
    );
    v4::connect(v4::opts("c-new", port, "dev-1", &new_secret))
        .await
        .expect("new secret accepted");

    // Secrets never reach the log.
    let log = ingest.log();
    assert!(
        !log.contains(&secret) && !log.contains(&new_secret),
        "a secret leaked into the log"
    );
    drop(ingest);
    db.drop_now().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn device_command_answers_bad_input_clearly() {
    let db = TestDb::create().await.unwrap();
    let secret = add_account(&db.url, "alice/phone", false);
    add_account(&db.url, "backend", true);

    let (ok, _, err) = device_cmd(&db.url, &["add", "alice/phone"]);
    assert!(!ok && err.contains("already exists"), "{err}");
    let (ok, _, err) = device_cmd(&db.url, &["add", "bad id with spaces"]);
    assert!(!ok && err.contains("invalid device id"), "{err}");
    let (ok, _, err) = device_cmd(&db.url, &["add", &"x".repeat(65)]);
    assert!(!ok && err.contains("invalid device id"), "{err}");
    for cmd in ["disable", "enable", "rotate-secret"] {
        let (ok, _, err) = device_cmd(&db.url, &[cmd, "ghost"]);
        assert!(!ok && err.contains("no device \"ghost\""), "{cmd}: {err}");
    }
    let (ok, out, _) = device_cmd(&db.url, &["list"]);
    assert!(ok);
    assert!(
        out.contains("alice/phone")
            && out.contains("backend")
            && out.contains("service")
            && out.contains("2 account(s)"),
        "{out}"
    );
    assert!(
        !out.contains(&secret) && !out.contains("argon2") && !out.contains("hmac"),
        "list must not show secrets or hashes"
    );
    let stored: String = db
        .client()
        .await
        .unwrap()
        .query_one(
            "SELECT secret_hash FROM devices WHERE device_id = 'alice/phone'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    // A generated secret is stored with the fast scheme, never in clear.
    assert!(stored.starts_with("$hmac-sha256$v=1$") && !stored.contains(&secret));

    let (ok, _, err) = device_cmd("postgres://nobody:pw@127.0.0.1:1/none", &["list"]);
    assert!(
        !ok && err.contains("cannot connect") && !err.contains(":pw@"),
        "{err}"
    );
    db.drop_now().await.unwrap();
}
