//! `deployer::mqtt_probe` against the real ingest (plain MQTT and MQTT over TLS with a
//! certificate for the MQTT domain, made by rcgen) and the local TimescaleDB: the registered
//! probe device's points are acknowledged and land in `positions`; every way the probe can be
//! refused (wrong secret, unknown device, disabled device, untrusted CA, a certificate for
//! another name, TLS against the plain port and the reverse, nothing listening) gives the
//! message that says what to do, never the secret.

mod common;

use std::time::{Duration, Instant};

use common::ingest::{ensure_probe, ingest_cmd, pki, sql, Ingest, TestDb};
use deployer::mqtt_probe::{publish, read_roots, Endpoint, Probe, ProbeError, Transport};

const DOMAIN: &str = "mqtt.fixture.example.test";
const SECRET: &str = "probe-secret-of-the-test-0123456789";

struct World {
    bin: std::path::PathBuf,
    db: TestDb,
    ingest: Ingest,
    ca: tempfile::NamedTempFile,
    other_ca: tempfile::NamedTempFile,
}

fn world() -> World {
    let bin = common::ingest::bin();
    let db = TestDb::create();
    ensure_probe(&bin, &db.url, "deployer-probe", SECRET);
    let (ca_pem, cert, key) = pki("verify", &[DOMAIN]);
    let ingest = Ingest::start(&bin, &db.url, &cert, &key);
    let ca = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(ca.path(), ca_pem).unwrap();
    let other_ca = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(other_ca.path(), pki("other", &[DOMAIN]).0).unwrap();
    World {
        bin,
        db,
        ingest,
        ca,
        other_ca,
    }
}

impl World {
    fn tls(&self, ca: Option<&std::path::Path>, server_name: &str) -> Probe {
        Probe {
            endpoint: Endpoint {
                address: format!("127.0.0.1:{}", self.ingest.mqtts),
                transport: Transport::Tls {
                    server_name: server_name.into(),
                    extra_roots: ca.map(|p| read_roots(p).unwrap()).unwrap_or_default(),
                },
                device_id: "deployer-probe".into(),
                password: SECRET.into(),
                timeout: Duration::from_secs(15),
            },
            points: 3,
        }
    }

    fn plain(&self) -> Probe {
        let mut p = self.tls(None, DOMAIN);
        p.endpoint.address = format!("127.0.0.1:{}", self.ingest.mqtt);
        p.endpoint.transport = Transport::Plain;
        p
    }

    /// Rows of the probe at exactly these times.
    fn stored(&self, times: &[i64]) -> usize {
        let list: Vec<String> = times
            .iter()
            .map(|t| format!("timestamptz 'epoch' + {t} * interval '1 millisecond'"))
            .collect();
        let rows = sql(
            &self.db.url,
            &format!(
                "SELECT count(*) FROM positions WHERE device_id = 'deployer-probe' AND time IN ({})",
                list.join(", ")
            ),
        );
        rows[0][0].parse().unwrap()
    }

    fn wait_stored(&self, times: &[i64]) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.stored(times) < times.len() {
            assert!(
                Instant::now() < deadline,
                "acknowledged points never reached positions"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn err(rt: &tokio::runtime::Runtime, p: &Probe) -> ProbeError {
    let e = rt
        .block_on(publish(p))
        .expect_err("the probe must be refused");
    assert!(!e.to_string().contains(SECRET), "the secret leaked: {e}");
    e
}

#[test]
fn the_probe_publishes_over_tls_and_plain_and_its_points_land() {
    let w = world();
    let rt = rt();
    let over_tls = rt
        .block_on(publish(&w.tls(Some(w.ca.path()), DOMAIN)))
        .unwrap();
    assert_eq!(over_tls.times_ms.len(), 3);
    w.wait_stored(&over_tls.times_ms);
    let plain = rt.block_on(publish(&w.plain())).unwrap();
    assert_eq!(plain.times_ms.len(), 3);
    w.wait_stored(&plain.times_ms);
    // Each run publishes new points (a later verify is not fooled by an earlier one's rows).
    assert!(plain.times_ms[0] > over_tls.times_ms[2] - 3_000);
    assert_ne!(plain.times_ms, over_tls.times_ms);
    // Marked as the probe's, in the project's JSON format.
    let rows = sql(
        &w.db.url,
        "SELECT attributes->>'probe' FROM positions WHERE device_id = 'deployer-probe' LIMIT 1",
    );
    assert_eq!(rows[0][0], "deployer verify");
}

#[test]
fn certificate_problems_are_named() {
    let w = world();
    let rt = rt();
    // Only the public web roots: the test CA is not among them.
    let e = err(&rt, &w.tls(None, DOMAIN)).to_string();
    assert!(
        e.contains("TLS with 127.0.0.1:")
            && e.contains("not signed by a publicly trusted CA")
            && e.contains("--mqtt-ca"),
        "{e}"
    );
    // Another CA's root does not help either.
    let e = err(&rt, &w.tls(Some(w.other_ca.path()), DOMAIN)).to_string();
    assert!(e.contains("not signed by a publicly trusted CA"), "{e}");
    // The right CA, but the certificate is for another name.
    let e = err(&rt, &w.tls(Some(w.ca.path()), "mqtt.other.example.test")).to_string();
    assert!(
        e.contains("not valid for mqtt.other.example.test") && e.contains(DOMAIN),
        "{e}"
    );
    // Nothing was published by the refused runs.
    let rows = sql(
        &w.db.url,
        "SELECT count(*) FROM positions WHERE device_id = 'deployer-probe'",
    );
    assert_eq!(rows[0][0], "0");
}

#[test]
fn refused_logins_say_what_to_do() {
    let w = world();
    let rt = rt();
    let tls = w.tls(Some(w.ca.path()), DOMAIN);

    // The credentials hold another secret than the one deploy registered.
    let mut wrong = tls.clone();
    wrong.endpoint.password = "another-secret-than-registered-0123".into();
    match err(&rt, &wrong) {
        ProbeError::Refused { code, reason, .. } => {
            assert_eq!(code, 4);
            assert!(
                reason.contains("not registered or its secret differs")
                    && reason.contains("deployer deploy <env>"),
                "{reason}"
            );
        }
        other => panic!("expected a refusal, got {other}"),
    }
    // An id that was never registered: the same answer (the broker does not tell them apart).
    let mut unknown = tls.clone();
    unknown.endpoint.device_id = "verify-1234-0".into();
    assert!(matches!(
        err(&rt, &unknown),
        ProbeError::Refused { code: 4, .. }
    ));

    // A disabled probe device: refused as not authorized (once the broker's cache learns it).
    let out = ingest_cmd(
        &w.bin,
        &w.db.url,
        &["device", "disable", "deployer-probe"],
        &[],
    );
    assert!(out.status.success(), "{out:?}");
    let deadline = Instant::now() + Duration::from_secs(60);
    let reason = loop {
        match rt.block_on(publish(&tls)) {
            Err(ProbeError::Refused {
                code: 5, reason, ..
            }) => break reason,
            other => {
                assert!(
                    Instant::now() < deadline,
                    "a disabled device was never refused: {other:?}"
                );
                std::thread::sleep(Duration::from_millis(500));
            }
        }
    };
    assert!(
        reason.contains("disabled") && reason.contains("device enable deployer-probe"),
        "{reason}"
    );
}

#[test]
fn wrong_ports_and_absent_brokers_are_named() {
    let w = world();
    let rt = rt();
    // TLS against the plain port.
    let mut tls_on_plain = w.tls(Some(w.ca.path()), DOMAIN);
    tls_on_plain.endpoint.address = format!("127.0.0.1:{}", w.ingest.mqtt);
    let e = err(&rt, &tls_on_plain).to_string();
    assert!(
        e.contains("TLS with") && e.contains("does this port speak TLS"),
        "{e}"
    );
    // Plain MQTT against the TLS port: no CONNACK ever comes.
    let mut plain_on_tls = w.plain();
    plain_on_tls.endpoint.address = format!("127.0.0.1:{}", w.ingest.mqtts);
    let e = err(&rt, &plain_on_tls).to_string();
    assert!(
        e.contains("the server answered with TLS: this port expects MQTT over TLS"),
        "{e}"
    );
    // Nothing listens.
    let mut absent = w.plain();
    absent.endpoint.address = format!("127.0.0.1:{}", common::free_port());
    let e = err(&rt, &absent).to_string();
    assert!(
        e.contains("cannot connect to 127.0.0.1:") && e.contains("deployer status <env>"),
        "{e}"
    );
    // Settings that make no sense are refused before any connection.
    let none = Probe {
        points: 0,
        ..w.plain()
    };
    assert!(matches!(err(&rt, &none), ProbeError::Config(_)));
    let mut no_password = w.plain();
    no_password.endpoint.password = String::new();
    let e = err(&rt, &no_password).to_string();
    assert!(e.contains("TEST_DEVICE_PASSWORD"), "{e}");
}
