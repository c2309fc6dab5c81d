//! `deployer::mqtt_probe::Publisher` (the continuous publisher of `reboot-test`) against the
//! real ingest over MQTT/TLS and the local TimescaleDB: the ingest is killed (SIGKILL, no
//! clean shutdown) while the probe publishes and started again on the same ports and WAL;
//! the probe buffers, reconnects with backoff and resends, and the reboot test's own check
//! (`reboot_test::probe_rows_sql`, `parse_rows`, `compare`) finds every acknowledged point in
//! `positions`, once. Broken settings, an absent broker, a wrong secret and a broker that
//! never comes back give clear errors, never the secret.

mod common;

use std::time::{Duration, Instant};

use common::ingest::{ensure_probe, pki, sql, Ingest, TestDb};
use deployer::mqtt_probe::{
    read_roots, Endpoint, ProbeError, Publisher, PublisherStats, StreamConfig, Transport,
};
use deployer::reboot_test::{compare, parse_rows, probe_rows_sql};

const DOMAIN: &str = "mqtt.fixture.example.test";
const SECRET: &str = "stream-probe-secret-of-the-test-0123456789";

struct World {
    db: TestDb,
    ingest: Ingest,
    ca: tempfile::NamedTempFile,
}

fn world() -> World {
    let bin = common::ingest::bin();
    let db = TestDb::create();
    ensure_probe(&bin, &db.url, "deployer-probe", SECRET);
    let (ca_pem, cert, key) = pki("stream", &[DOMAIN]);
    let ingest = Ingest::start(&bin, &db.url, &cert, &key);
    let ca = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(ca.path(), ca_pem).unwrap();
    World { db, ingest, ca }
}

impl World {
    fn config(&self, rate: f64) -> StreamConfig {
        let mut c = StreamConfig::new(
            Endpoint {
                address: format!("127.0.0.1:{}", self.ingest.mqtts),
                transport: Transport::Tls {
                    server_name: DOMAIN.into(),
                    extra_roots: read_roots(self.ca.path()).unwrap(),
                },
                device_id: "deployer-probe".into(),
                password: SECRET.into(),
                timeout: Duration::from_secs(10),
            },
            rate,
        );
        c.backoff_min = Duration::from_millis(200);
        c.backoff_max = Duration::from_secs(1);
        c
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Polls the publisher until `ok` holds (panics with the stats after `secs`).
fn wait_for(p: &Publisher, secs: u64, what: &str, ok: impl Fn(&PublisherStats) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let st = p.stats();
        if ok(&st) {
            return;
        }
        assert!(Instant::now() < deadline, "{what} within {secs} s: {st:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn every_acknowledged_point_survives_a_crash_of_the_ingest() {
    let mut w = world();
    let rt = rt();
    let publisher = rt.block_on(Publisher::start(w.config(20.0))).unwrap();
    wait_for(&publisher, 30, "20 points acknowledged", |s| s.acked >= 20);

    // The crash: no clean shutdown, the connection drops at once.
    w.ingest.kill();
    let acked_before = publisher.stats().acked;
    wait_for(&publisher, 30, "the loss noticed", |s| !s.connected);
    // Points keep becoming due while the broker is away: they wait in the buffer.
    let due_at_loss = publisher.stats().due;
    wait_for(&publisher, 30, "points buffered while down", |s| {
        s.due >= due_at_loss + 20 && s.queued >= 20
    });
    let down = publisher.stats();
    assert!(down.lost >= 1 && down.last_error.is_some(), "{down:?}");

    // The host is back: same ports, same WAL.
    w.ingest.spawn();
    wait_for(&publisher, 60, "reconnected and caught up", |s| {
        s.sessions >= 2 && s.acked >= down.due as usize + 10
    });
    let record = rt.block_on(publisher.stop(Duration::from_secs(30)));
    let st = &record.stats;
    assert!(st.gave_up.is_none(), "{st:?}");
    assert!(
        record.unacked.is_empty(),
        "the drain acknowledged the rest: {st:?}"
    );
    assert_eq!(record.acked.len() as u64, st.due, "{st:?}");
    assert!(
        record.acked.windows(2).all(|t| t[0] < t[1]),
        "one unique time per point"
    );
    let (first, last) = record.span.unwrap();
    assert_eq!(
        (first, last),
        (record.acked[0], *record.acked.last().unwrap())
    );

    // The reboot test's check, on the rows of this run.
    let acked: Vec<fleet::AckedPoint> = record
        .acked
        .iter()
        .map(|t| fleet::AckedPoint {
            device_id: "deployer-probe".into(),
            time_ms: *t,
        })
        .collect();
    let query = probe_rows_sql("deployer-probe", first, last);
    let deadline = Instant::now() + Duration::from_secs(60);
    let verdict = loop {
        let rows: Vec<String> = sql(&w.db.url, &query)
            .into_iter()
            .map(|r| r.join(","))
            .collect();
        let v = compare(&acked, &parse_rows(&rows).unwrap(), acked_before);
        if v.missing.is_empty() || Instant::now() > deadline {
            break v;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(
        verdict.passed(),
        "{}\n{}",
        verdict.summary(),
        w.ingest.log()
    );
    assert_eq!(verdict.found, record.acked.len());
    assert!(verdict.acked_after > 0);
    assert!(verdict.duplicates.is_empty());
    // Marked as the reboot test's points.
    let marks = sql(
        &w.db.url,
        "SELECT DISTINCT attributes->>'probe' FROM positions WHERE device_id = 'deployer-probe'",
    );
    assert_eq!(marks, [["deployer reboot-test".to_owned()]]);
}

#[test]
fn the_publisher_gives_up_when_the_broker_stays_away() {
    let mut w = world();
    let rt = rt();
    let mut cfg = w.config(10.0);
    cfg.max_outage = Duration::from_secs(3);
    let publisher = rt.block_on(Publisher::start(cfg)).unwrap();
    wait_for(&publisher, 30, "5 points acknowledged", |s| s.acked >= 5);
    w.ingest.kill();
    wait_for(&publisher, 60, "giving up", |s| s.gave_up.is_some());
    let record = rt.block_on(publisher.stop(Duration::from_secs(1)));
    let why = record.stats.gave_up.clone().unwrap();
    assert!(
        why.contains(&format!("no connection to 127.0.0.1:{}", w.ingest.mqtts))
            && why.contains("cannot connect"),
        "{why}"
    );
    assert!(record.acked.len() >= 5, "{:?}", record.stats);
    assert!(
        !record.unacked.is_empty(),
        "points due while down were never acked"
    );
    assert!(!format!("{record:?}").contains(SECRET));
}

#[test]
fn broken_settings_absent_brokers_and_wrong_secrets_are_refused_at_start() {
    let w = world();
    let rt = rt();
    let start = |cfg: StreamConfig| -> ProbeError {
        let e = rt
            .block_on(Publisher::start(cfg))
            .err()
            .expect("the start must fail");
        assert!(!e.to_string().contains(SECRET), "the secret leaked: {e}");
        e
    };
    for bad in [0.0, -1.0, f64::NAN, 21.0] {
        let e = start(w.config(bad));
        assert!(
            matches!(&e, ProbeError::Config(m) if m.contains("points per second")),
            "{bad}: {e}"
        );
    }
    // Nothing listens there.
    let mut absent = w.config(1.0);
    absent.endpoint.address = format!("127.0.0.1:{}", common::free_port());
    let e = start(absent).to_string();
    assert!(
        e.contains("cannot connect to 127.0.0.1:") && e.contains("deployer status <env>"),
        "{e}"
    );
    // A host name that does not resolve.
    let mut unknown = w.config(1.0);
    unknown.endpoint.address = "no-such-host.invalid:8883".into();
    let e = start(unknown).to_string();
    assert!(
        e.contains("cannot connect to no-such-host.invalid:8883"),
        "{e}"
    );
    // Not the registered secret.
    let mut wrong = w.config(1.0);
    wrong.endpoint.password = "not-the-registered-secret-0123456789".into();
    match start(wrong) {
        ProbeError::Refused { code: 4, .. } => {}
        other => panic!("expected CONNACK 4, got {other}"),
    }
    // Nothing was stored by the refused starts.
    let rows = sql(
        &w.db.url,
        "SELECT count(*) FROM positions WHERE device_id = 'deployer-probe'",
    );
    assert_eq!(rows[0][0], "0");
}
