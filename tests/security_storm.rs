//! A cold reconnect storm of accounts with **chosen** secrets (argon2id, the slow scheme)
//! against the real broker (rmqtt with the authentication hook, the real registry on the local
//! database, real MQTT 3.1.1 and 5 clients): with one argon2 verification slot and a 200 ms
//! bound on the wait for it, the logins that cannot be verified in time are refused at once as
//! "retry later" (CONNACK "server unavailable" in 3.1.1, "server busy" in MQTT 5, written by
//! the gate over rmqtt's "not authorized"), each counted as
//! `ingest_mqtt_auth_total{outcome="busy"}`, without any argon2 work; the devices back off,
//! retry, and all get in, each verified exactly once. (Generated secrets have the fast scheme
//! and never queue: `tests/reconnect_storm.rs`.)
//!
//! The broker runs in this process (`ingest::broker::Broker`) rather than as the `ingest`
//! binary so that the slot count and the bound can be set small enough for the storm to
//! overflow them on any machine; the binary derives the bound from its handshake timeout
//! (`cargo bench --bench connect_storm` exercises that path).

mod security_support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use accoreboot_edge::harness::TestDb;
use ingest::auth::{AuthOptions, Kind, Registry};
use ingest::broker::limits::LimitOptions;
use ingest::broker::{Broker, BrokerOptions, SecurityOptions};
use security_support::{v4, v5};

const DEVICES: usize = 40;

/// How one login attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Attempt {
    Accepted,
    /// CONNACK "server unavailable" (3.1.1) or "server busy" (5): what a busy verifier answers.
    Busy,
    Other,
}

type V4Session = (v4::AsyncClient, v4::EventLoop);
type V5Session = (v5::AsyncClient, v5::EventLoop);

async fn attempt_v4(port: u16, id: &str, secret: &str) -> (Attempt, Option<V4Session>) {
    match v4::connect(v4::opts(&format!("c-{id}"), port, id, secret)).await {
        Ok(session) => (Attempt::Accepted, Some(session)),
        Err(v4::ConnectionError::ConnectionRefused(v4::ConnectReturnCode::ServiceUnavailable)) => {
            (Attempt::Busy, None)
        }
        Err(e) => {
            eprintln!("{id}: {e:?}");
            (Attempt::Other, None)
        }
    }
}

async fn attempt_v5(port: u16, id: &str, secret: &str) -> (Attempt, Option<V5Session>) {
    match v5::connect(v5::opts(&format!("c-{id}"), port, id, secret)).await {
        Ok(session) => (Attempt::Accepted, Some(session)),
        Err(v5::ConnectionError::ConnectionRefused(v5::ConnectReturnCode::ServerBusy)) => {
            (Attempt::Busy, None)
        }
        Err(e) => {
            eprintln!("{id}: {e:?}");
            (Attempt::Other, None)
        }
    }
}

/// A device that keeps its session open once in: its client held and its event loop polled
/// in the background.
enum Session {
    V4(Box<V4Session>),
    V5(Box<V5Session>),
}

impl Session {
    fn keep(self) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            match self {
                Session::V4(s) => {
                    let (_client, mut events) = *s;
                    while events.poll().await.is_ok() {}
                }
                Session::V5(s) => {
                    let (_client, mut events) = *s;
                    while events.poll().await.is_ok() {}
                }
            }
        })
    }
}

/// One login attempt; even-numbered devices speak MQTT 3.1.1, odd ones MQTT 5.
async fn attempt(port: u16, i: usize, id: &str, secret: &str) -> (Attempt, Option<Session>) {
    if i.is_multiple_of(2) {
        let (a, s) = attempt_v4(port, id, secret).await;
        (a, s.map(|e| Session::V4(Box::new(e))))
    } else {
        let (a, s) = attempt_v5(port, id, secret).await;
        (a, s.map(|e| Session::V5(Box::new(e))))
    }
}

/// The sum of a metric's samples whose line starts with `prefix`.
fn sample(rendered: &str, prefix: &str) -> f64 {
    rendered
        .lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse::<f64>().ok()))
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cold_storm_is_refused_fast_as_busy_and_every_device_gets_in_after_retrying() {
    // This test binary has one test, so the process-wide metrics recorder is ours alone.
    let metrics = ingest::metrics::install().expect("metrics recorder");
    let db = TestDb::create().await.unwrap();
    let mut client = db.client().await.unwrap();
    ingest::schema::migrate(&mut client, &Default::default())
        .await
        .unwrap();

    let pool = ingest::db::pool(&db.url, None, 2).unwrap();
    let registry = Arc::new(Registry::new(pool));
    let mut devices = Vec::new();
    for i in 0..DEVICES {
        let id = format!("storm-{i:03}");
        // A secret a person chose: it keeps the slow scheme.
        let secret = format!("chosen passphrase number {i} of the storm");
        registry
            .add_with_secret(&id, Kind::Device, &secret)
            .await
            .unwrap();
        devices.push((id, secret));
    }

    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = ingest::wal::Wal::open(&dir.path().join("wal"), Default::default()).unwrap();
    let opts = BrokerOptions {
        mqtt_listen: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        security: SecurityOptions {
            registry: Some(registry.clone()),
            auth: AuthOptions {
                max_parallel_verifications: 1,
                verify_wait: Some(Duration::from_millis(200)),
                ..AuthOptions::default()
            },
            limits: LimitOptions {
                connection_rate: 0,
                ..LimitOptions::default()
            },
            ..SecurityOptions::default()
        },
        ..BrokerOptions::default()
    };
    let broker = Broker::start(
        &opts,
        wal,
        Arc::new(Default::default()),
        Arc::new(ingest::health::Health::new()),
    )
    .await
    .unwrap();
    let port = broker.mqtt_addr.expect("MQTT address").port();

    // The storm: every device at once, one attempt each.
    let first: Vec<_> = devices
        .iter()
        .enumerate()
        .map(|(i, (id, secret))| {
            let (id, secret) = (id.clone(), secret.clone());
            tokio::spawn(async move { attempt(port, i, &id, &secret).await })
        })
        .collect();
    let mut sessions = Vec::new();
    let mut waiting = Vec::new();
    let mut refused = 0usize;
    for (i, t) in first.into_iter().enumerate() {
        let (outcome, session) = t.await.unwrap();
        match outcome {
            Attempt::Accepted => sessions.push(session.expect("session").keep()),
            Attempt::Busy => {
                refused += 1;
                waiting.push(i);
            }
            Attempt::Other => panic!("device {i}: neither accepted nor refused as busy"),
        }
    }
    let rendered = metrics.render();
    assert!(
        !sessions.is_empty(),
        "the first logins get a slot at once: {rendered}"
    );
    assert!(
        refused > 0,
        "{DEVICES} logins on one slot with a 200 ms bound must overflow it"
    );
    assert_eq!(
        sample(&rendered, "ingest_mqtt_auth_total{outcome=\"busy\"}") as usize,
        refused,
        "every refusal is counted as busy"
    );
    assert_eq!(
        sample(
            &rendered,
            "ingest_auth_verifications_total{scheme=\"argon2id\"}"
        ) as usize,
        sessions.len(),
        "a busy refusal costs no argon2 verification"
    );

    // The refused devices back off and retry, like trackers do, until all are in.
    let mut round = 0u32;
    while !waiting.is_empty() {
        round += 1;
        assert!(
            round <= 60,
            "{} devices still out after 60 rounds",
            waiting.len()
        );
        tokio::time::sleep(Duration::from_millis(100 + 20 * u64::from(round.min(10)))).await;
        let tries: Vec<_> = waiting
            .iter()
            .map(|&i| {
                let (id, secret) = devices[i].clone();
                tokio::spawn(async move { (i, attempt(port, i, &id, &secret).await) })
            })
            .collect();
        waiting.clear();
        for t in tries {
            let (i, (outcome, session)) = t.await.unwrap();
            match outcome {
                Attempt::Accepted => sessions.push(session.expect("session").keep()),
                Attempt::Busy => {
                    refused += 1;
                    waiting.push(i);
                }
                Attempt::Other => panic!("device {i}: neither accepted nor refused as busy"),
            }
        }
    }
    eprintln!("{DEVICES} devices in after {round} retry rounds and {refused} busy refusals");
    assert_eq!(sessions.len(), DEVICES);
    let rendered = metrics.render();
    assert_eq!(
        sample(&rendered, "ingest_mqtt_auth_total{outcome=\"allowed\"}") as usize,
        DEVICES
    );
    assert_eq!(
        sample(&rendered, "ingest_mqtt_auth_total{outcome=\"busy\"}") as usize,
        refused
    );
    assert_eq!(
        sample(
            &rendered,
            "ingest_auth_verifications_total{scheme=\"argon2id\"}"
        ) as usize,
        DEVICES,
        "each device was verified exactly once, however often it was refused"
    );
    assert!(sample(&rendered, "ingest_auth_verify_seconds_count") as usize == DEVICES);

    for s in sessions {
        s.abort();
    }
    broker.stop_accepting();
    drop(broker);
    db.drop_now().await.unwrap();
}
