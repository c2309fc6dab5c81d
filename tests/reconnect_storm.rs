//! Reconnect storms and what a refused tracker is told, with the real `ingest` binary, its real
//! registry on the local database and real MQTT 3.1.1 and 5 clients:
//! - 500 trackers, each with its own generated secret, connecting at once with the rate limit
//!   off are all accepted within seconds (generated secrets have the fast hash scheme);
//! - a login refused for load says "retry later": the connection-rate limit answers "server
//!   unavailable" (3) in 3.1.1 and "connection rate exceeded" (0x9F) in MQTT 5, the connection
//!   limit "server busy" (0x89), never "not authorized";
//! - with the database down, a tracker whose secret is not cached is told "server unavailable"
//!   (3 / 0x88), while one verified before keeps getting in;
//! - an account whose hash is still argon2id logs in and its hash is replaced by the fast one.

mod security_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use accoreboot_edge::harness::{OwnServer, TestDb};
use ingest::auth::{Kind, Registry, Scheme};
use security_support::{metric, start, v4, v5};

/// Creates `n` device accounts through the registry (the same code `ingest device add` runs)
/// and returns their ids and secrets.
async fn accounts(db: &TestDb, prefix: &str, n: usize) -> Vec<(String, String)> {
    let registry = Registry::new(ingest::db::pool(&db.url, None, 4).unwrap());
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let id = format!("{prefix}{i:04}");
        let secret = registry.add(&id, Kind::Device).await.unwrap();
        out.push((id, secret));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn five_hundred_trackers_with_their_own_secrets_all_get_in_at_once() {
    const N: usize = 500;
    let db = TestDb::create().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    // The schema comes with the first start.
    let ingest = start(&db, &dir, &["--max-connection-rate", "0"]);
    let devices = accounts(&db, "fleet-", N).await;
    let port = ingest.mqtt_port;
    let started = Instant::now();
    let tasks: Vec<_> = devices
        .into_iter()
        .map(|(id, secret)| {
            tokio::spawn(async move {
                let r = v4::connect(v4::opts(&format!("c-{id}"), port, &id, &secret)).await;
                (r.map_err(|e| format!("{id}: {e:?}")), Instant::now())
            })
        })
        .collect();
    let mut sessions = Vec::new();
    let mut refused = Vec::new();
    let mut last = started;
    for t in tasks {
        let (r, at) = t.await.unwrap();
        match r {
            Ok(s) => {
                last = last.max(at);
                sessions.push(s);
            }
            Err(e) => refused.push(e),
        }
    }
    let took = last - started;
    println!(
        "{N} trackers at once: {} accepted in {took:?}, {} refused",
        sessions.len(),
        refused.len()
    );
    assert!(
        refused.is_empty(),
        "refused: {:?}",
        &refused[..refused.len().min(5)]
    );
    assert!(took < Duration::from_secs(5), "{N} logins took {took:?}");
    assert_eq!(
        metric(&ingest, "ingest_auth_verifications_total", &["argon2id"]),
        0.0,
        "generated secrets never reach argon2"
    );
    drop(sessions);
    drop(ingest);
    db.drop_now().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_login_refused_by_the_rate_limit_is_told_to_retry_in_both_versions() {
    let db = TestDb::create().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ingest = start(&db, &dir, &["--max-connection-rate", "1"]);
    let devices = Arc::new(accounts(&db, "rate-", 10).await);
    let port = ingest.mqtt_port;
    // Let the rate limiter's bucket refill after the accounts were made.
    tokio::time::sleep(Duration::from_millis(1100)).await;

    // A burst of five MQTT 3.1.1 logins: one in, the others "server unavailable".
    let burst: Vec<_> = (0..5)
        .map(|i| {
            let d = devices.clone();
            tokio::spawn(async move {
                let (id, secret) = &d[i];
                v4::connect(v4::opts(&format!("c-{id}"), port, id, secret)).await
            })
        })
        .collect();
    let mut accepted = Vec::new();
    let mut codes = Vec::new();
    for t in burst {
        match t.await.unwrap() {
            Ok(s) => accepted.push(s),
            Err(v4::ConnectionError::ConnectionRefused(code)) => codes.push(code),
            Err(e) => panic!("neither accepted nor refused: {e:?}"),
        }
    }
    // One per second: the burst gets one in (two if it straddled a second on a loaded
    // machine); every other login is told to retry.
    assert!((1..=2).contains(&accepted.len()), "refusals: {codes:?}");
    assert_eq!(
        codes,
        vec![v4::ConnectReturnCode::ServiceUnavailable; 5 - accepted.len()]
    );
    let refused_v3 = codes.len();

    // MQTT 5: "connection rate exceeded".
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let burst: Vec<_> = (5..10)
        .map(|i| {
            let d = devices.clone();
            tokio::spawn(async move {
                let (id, secret) = &d[i];
                v5::connect(v5::opts(&format!("c-{id}"), port, id, secret)).await
            })
        })
        .collect();
    let mut accepted5 = Vec::new();
    let mut codes = Vec::new();
    for t in burst {
        match t.await.unwrap() {
            Ok(s) => accepted5.push(s),
            Err(v5::ConnectionError::ConnectionRefused(code)) => codes.push(code),
            Err(e) => panic!("neither accepted nor refused: {e:?}"),
        }
    }
    assert!((1..=2).contains(&accepted5.len()), "refusals: {codes:?}");
    assert_eq!(
        codes,
        vec![v5::ConnectReturnCode::ConnectionRateExceeded; 5 - accepted5.len()]
    );
    assert_eq!(
        metric(&ingest, "ingest_mqtt_auth_total", &["connection_rate"]),
        (refused_v3 + codes.len()) as f64
    );

    // Wrong credentials are still "bad user name or password", never "retry".
    tokio::time::sleep(Duration::from_millis(1100)).await;
    match v4::connect(v4::opts("c-wrong", port, "rate-0009", "wrong")).await {
        Err(v4::ConnectionError::ConnectionRefused(code)) => {
            assert_eq!(code, v4::ConnectReturnCode::BadUserNamePassword)
        }
        other => panic!("wrong secret: {:?}", other.err()),
    }
    drop((accepted, accepted5, ingest));
    db.drop_now().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_connection_limit_answers_server_busy_in_mqtt_5() {
    let db = TestDb::create().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ingest = start(&db, &dir, &["--max-connections", "1"]);
    let devices = accounts(&db, "cap-", 2).await;
    let port = ingest.mqtt_port;
    let (id, secret) = &devices[0];
    let first = v5::connect(v5::opts("c-first", port, id, secret))
        .await
        .unwrap();
    let (id, secret) = &devices[1];
    match v5::connect(v5::opts("c-second", port, id, secret)).await {
        Err(v5::ConnectionError::ConnectionRefused(code)) => {
            assert_eq!(code, v5::ConnectReturnCode::ServerBusy)
        }
        other => panic!("second connection: {:?}", other.err()),
    }
    drop((first, ingest));
    db.drop_now().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn with_the_database_down_an_unverified_login_is_told_server_unavailable() {
    // A database server of this test's own, stopped in the middle.
    let (server, admin) = OwnServer::start(55444).unwrap();
    let db = TestDb::create_on(&admin).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ingest = start(&db, &dir, &[]);
    let devices = accounts(&db, "down-", 3).await;
    let port = ingest.mqtt_port;
    let (known, known_secret) = &devices[0];
    let session = v4::connect(v4::opts("c-known", port, known, known_secret))
        .await
        .unwrap();
    drop(session);

    server.stop().unwrap();
    let (id, secret) = &devices[1];
    match v4::connect(v4::opts("c-new4", port, id, secret)).await {
        Err(v4::ConnectionError::ConnectionRefused(code)) => {
            assert_eq!(code, v4::ConnectReturnCode::ServiceUnavailable)
        }
        other => panic!("3.1.1 login with the registry down: {:?}", other.err()),
    }
    let (id, secret) = &devices[2];
    match v5::connect(v5::opts("c-new5", port, id, secret)).await {
        Err(v5::ConnectionError::ConnectionRefused(code)) => {
            assert_eq!(code, v5::ConnectReturnCode::ServerUnavailable)
        }
        other => panic!("MQTT 5 login with the registry down: {:?}", other.err()),
    }
    // A device verified before the outage is let in (availability over instant revocation).
    let again = v4::connect(v4::opts("c-known2", port, known, known_secret)).await;
    assert!(again.is_ok(), "{:?}", again.err());
    assert_eq!(
        metric(&ingest, "ingest_mqtt_auth_total", &["unavailable"]),
        2.0
    );
    drop((again, ingest));
    // Leave nothing running: back up to drop the test database, then stopped.
    server.restart().unwrap();
    db.drop_now().await.unwrap();
    server.stop().unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_account_hashed_with_argon2_still_logs_in_and_is_rehashed() {
    let db = TestDb::create().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ingest = start(&db, &dir, &[]);
    let (id, secret) = accounts(&db, "old-", 1).await.remove(0);
    // As the previous release stored it: argon2id of the generated secret.
    let old = ingest::auth::hash_secret_slow(&secret).unwrap();
    let client = db.client().await.unwrap();
    client
        .execute(
            "UPDATE devices SET secret_hash = $2 WHERE device_id = $1",
            &[&id, &old],
        )
        .await
        .unwrap();
    assert_eq!(
        ingest::auth::hash_scheme(&stored_hash(&client, &id).await),
        Scheme::Slow
    );

    let (c, ev) = v4::connect(v4::opts("c-old", ingest.mqtt_port, &id, &secret))
        .await
        .expect("an argon2id hash still logs in");
    drop((c, ev));
    let now = stored_hash(&client, &id).await;
    assert_eq!(ingest::auth::hash_scheme(&now), Scheme::Fast, "{now}");
    assert!(ingest::auth::verify_secret(&secret, &now).unwrap());
    assert_eq!(metric(&ingest, "ingest_auth_rehashed_total", &[]), 1.0);
    assert_eq!(
        metric(&ingest, "ingest_auth_verifications_total", &["argon2id"]),
        1.0
    );

    // After a restart (empty cache), the next login verifies the fast hash.
    let mut ingest = ingest;
    ingest.restart().unwrap();
    ingest.wait_ready(Duration::from_secs(30)).unwrap();
    let (c, ev) = v4::connect(v4::opts("c-old2", ingest.mqtt_port, &id, &secret))
        .await
        .expect("the rehashed account logs in");
    drop((c, ev));
    assert_eq!(
        metric(&ingest, "ingest_auth_verifications_total", &["argon2id"]),
        0.0
    );
    assert_eq!(
        metric(&ingest, "ingest_auth_verifications_total", &["hmac-sha256"]),
        1.0
    );
    drop(ingest);
    db.drop_now().await.unwrap();
}

async fn stored_hash(client: &tokio_postgres::Client, id: &str) -> String {
    client
        .query_one(
            "SELECT secret_hash FROM devices WHERE device_id = $1",
            &[&id],
        )
        .await
        .unwrap()
        .get(0)
}
