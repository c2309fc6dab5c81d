//! End to end: real MQTT clients publish to the real ingest process, rows appear in the real
//! TimescaleDB: the project JSON (single and array), OwnTracks (units converted), rejects with
//! their reason, `device_latest` moving forward only, and mosquitto_pub from Debian.

use std::time::{Duration, Instant};

use accoreboot_edge::harness::{Ingest, IngestOptions, TestDb};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};

async fn start(db: &TestDb, dir: &tempfile::TempDir) -> Ingest {
    let ingest = Ingest::start(IngestOptions {
        database_url: db.url.clone(),
        wal_dir: dir.path().join("wal"),
        args: vec!["--batch-linger".into(), "20ms".into()],
        allow_anonymous: true,
    })
    .expect("ingest starts");
    ingest
        .wait_ready(Duration::from_secs(30))
        .expect("ingest ready");
    ingest
}

/// Publishes QoS 1 messages and waits for each PUBACK.
async fn publish_all(port: u16, client_id: &str, messages: &[(&str, String)]) {
    let mut opts = MqttOptions::new(client_id, "127.0.0.1", port);
    opts.set_keep_alive(Duration::from_secs(10));
    let (client, mut events) = AsyncClient::new(opts, 16);
    for (topic, payload) in messages {
        client
            .publish(*topic, QoS::AtLeastOnce, false, payload.clone())
            .await
            .unwrap();
    }
    let mut acked = 0;
    let deadline = Instant::now() + Duration::from_secs(20);
    while acked < messages.len() {
        assert!(
            Instant::now() < deadline,
            "PUBACKs missing: {acked}/{}",
            messages.len()
        );
        match tokio::time::timeout(Duration::from_secs(10), events.poll()).await {
            Ok(Ok(Event::Incoming(Packet::PubAck(_)))) => acked += 1,
            Ok(Ok(_)) => {}
            Ok(Err(e)) => panic!("MQTT error: {e}"),
            Err(_) => panic!("no MQTT event for 10 s"),
        }
    }
    let _ = client.disconnect().await;
}

async fn wait_rows(db: &TestDb, sql: &str, expected: i64) -> i64 {
    let c = db.client().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let n: i64 = c.query_one(sql, &[]).await.map(|r| r.get(0)).unwrap_or(-1);
        if n >= expected || Instant::now() > deadline {
            return n;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[tokio::test(flavor = "multi_thread")]
async fn project_json_owntracks_and_rejects_land_in_the_database() {
    let db = TestDb::create().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ingest = start(&db, &dir).await;
    let t = now_ms() - 60_000;
    let single = format!(
        r#"{{"time": {t}, "lat": 48.85, "lon": 2.35, "speed": 3.5, "battery": 80, "attributes": {{"ign": true}}}}"#
    );
    let array = format!(
        r#"[{{"time": {}, "lat": 48.86, "lon": 2.36}}, {{"time": "{}", "lat": 48.87, "lon": 2.37, "heading": 370}}]"#,
        t + 1000,
        chrono::DateTime::from_timestamp_millis(t + 2000)
            .unwrap()
            .to_rfc3339()
    );
    let owntracks = format!(
        r#"{{"_type": "location", "lat": 45.1, "lon": 5.7, "tst": {}, "vel": 36, "acc": 12}}"#,
        t / 1000 - 10
    );
    let bad = format!(r#"{{"time": {t}, "lat": 123.0, "lon": 2.35}}"#);
    publish_all(
        ingest.mqtt_port,
        "e2e-1",
        &[
            ("devices/dev-1/positions", single),
            ("devices/dev-1/positions", array),
            ("owntracks/alice/phone", owntracks),
            ("devices/dev-2/positions", bad),
            ("devices/dev-2/positions", "not json at all".to_string()),
        ],
    )
    .await;

    assert_eq!(
        wait_rows(
            &db,
            "SELECT count(*) FROM positions WHERE device_id = 'dev-1'",
            3
        )
        .await,
        3
    );
    assert_eq!(wait_rows(&db, "SELECT count(*) FROM rejects", 2).await, 2);
    let c = db.client().await.unwrap();

    // OwnTracks: device id user/device, km/h converted to m/s.
    let row = c
        .query_one(
            "SELECT device_id, speed, accuracy FROM positions WHERE device_id = 'alice/phone'",
            &[],
        )
        .await
        .unwrap();
    let speed: f64 = row.get(1);
    assert!(
        (speed - 10.0).abs() < 1e-9,
        "36 km/h is 10 m/s, got {speed}"
    );
    assert_eq!(row.get::<_, f64>(2), 12.0);

    // Heading normalised, attributes kept as jsonb.
    let heading: f64 = c
        .query_one(
            "SELECT heading FROM positions WHERE device_id = 'dev-1' AND heading IS NOT NULL",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!((heading - 10.0).abs() < 1e-9);
    let ign: bool = c
        .query_one(
            "SELECT (attributes->>'ign')::bool FROM positions WHERE attributes IS NOT NULL",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(ign);

    // device_latest holds the newest point of dev-1.
    let lat: f64 = c
        .query_one(
            "SELECT lat FROM device_latest WHERE device_id = 'dev-1'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(lat, 48.87);

    // Rejects keep the reason and the raw payload.
    let reasons: Vec<String> = c
        .query("SELECT reason FROM rejects ORDER BY reason", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        reasons,
        vec![
            "invalid_json".to_string(),
            "latitude_out_of_range".to_string()
        ]
    );
    let raw: Vec<u8> = c
        .query_one(
            "SELECT payload FROM rejects WHERE reason = 'invalid_json'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(raw, b"not json at all");

    // Metrics count the outcomes.
    let (status, metrics) = ingest.http_get("/metrics").unwrap();
    assert_eq!(status, 200);
    assert!(metrics.contains("ingest_messages_total"), "{metrics}");
    assert!(metrics.contains("latitude_out_of_range"), "{metrics}");
    drop(ingest);
    db.drop_now().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn resent_points_are_stored_once_and_latest_only_moves_forward() {
    let db = TestDb::create().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ingest = start(&db, &dir).await;
    let t = now_ms() - 120_000;
    let newer = format!(r#"{{"time": {}, "lat": 10.0, "lon": 10.0}}"#, t + 60_000);
    let older = format!(r#"{{"time": {t}, "lat": 20.0, "lon": 20.0}}"#);
    // The same point three times (QoS 1 redelivery, offline buffer flushed twice), then a late one.
    publish_all(
        ingest.mqtt_port,
        "e2e-2",
        &[
            ("devices/dup-1/positions", newer.clone()),
            ("devices/dup-1/positions", newer.clone()),
            ("devices/dup-1/positions", format!("[{newer}, {newer}]")),
        ],
    )
    .await;
    assert_eq!(
        wait_rows(
            &db,
            "SELECT count(*) FROM positions WHERE device_id = 'dup-1'",
            1
        )
        .await,
        1
    );
    publish_all(
        ingest.mqtt_port,
        "e2e-2b",
        &[("devices/dup-1/positions", older)],
    )
    .await;
    assert_eq!(
        wait_rows(
            &db,
            "SELECT count(*) FROM positions WHERE device_id = 'dup-1'",
            2
        )
        .await,
        2
    );
    let c = db.client().await.unwrap();
    let lat: f64 = c
        .query_one(
            "SELECT lat FROM device_latest WHERE device_id = 'dup-1'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        lat, 10.0,
        "a late point must not replace the newer latest position"
    );
    drop(ingest);
    db.drop_now().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn mosquitto_pub_from_debian_is_acknowledged_and_stored() {
    let db = TestDb::create().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ingest = start(&db, &dir).await;
    let t = now_ms() - 5_000;
    let payload = format!(r#"{{"time": {t}, "lat": 43.6, "lon": 1.44, "satellites": 9}}"#);
    let port = ingest.mqtt_port.to_string();
    for version in ["mqttv311", "mqttv5"] {
        let out = std::process::Command::new("mosquitto_pub")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-q",
                "1",
                "-V",
                version,
                "-i",
                version,
            ])
            .args([
                "-t",
                &format!("devices/mosq-{version}/positions"),
                "-m",
                &payload,
            ])
            .output()
            .expect("mosquitto_pub is missing: apt-get install -y mosquitto-clients");
        assert!(
            out.status.success(),
            "mosquitto_pub {version} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(
        wait_rows(
            &db,
            "SELECT count(*) FROM positions WHERE device_id LIKE 'mosq-%'",
            2
        )
        .await,
        2
    );
    drop(ingest);
    db.drop_now().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_simulated_fleet_is_stored_exactly_once() {
    let db = TestDb::create().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ingest = start(&db, &dir).await;
    let mut cfg = fleet::FleetConfig::new("127.0.0.1", ingest.mqtt_port);
    cfg.devices = 20;
    cfg.rate_per_device = 20.0;
    cfg.points_per_message = 2;
    cfg.max_points = Some(40);
    cfg.prefix = "fleet-".into();
    let fleet = fleet::Fleet::start(cfg).unwrap();
    fleet
        .wait_all_acked(Duration::from_secs(60))
        .await
        .expect("every point acknowledged");
    let report = fleet.stop(Duration::from_secs(5)).await;
    assert_eq!(report.acked.len(), 800);
    assert_eq!(
        wait_rows(&db, "SELECT count(*) FROM positions", 800).await,
        800
    );
    let mut stored = db.stored_points().await.unwrap();
    stored.sort();
    let mut acked: Vec<(String, i64)> = report
        .acked
        .iter()
        .map(|p| (p.device_id.clone(), p.time_ms))
        .collect();
    acked.sort();
    assert_eq!(stored, acked);
    drop(ingest);
    db.drop_now().await.unwrap();
}
