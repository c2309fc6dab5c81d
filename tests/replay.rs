//! Replay: records acknowledged while the database was unreachable wait in the WAL; at the next
//! start they are written once, and restarts after that (graceful or SIGKILL) write nothing twice.

use std::time::{Duration, Instant};

use accoreboot_edge::harness::{free_port, Ingest, IngestOptions, TestDb};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};

async fn publish(port: u16, messages: Vec<(String, String)>) {
    let mut opts = MqttOptions::new("replay", "127.0.0.1", port);
    opts.set_keep_alive(Duration::from_secs(10));
    let (client, mut events) = AsyncClient::new(opts, 64);
    let n = messages.len();
    let sender = tokio::spawn(async move {
        for (t, p) in messages {
            client.publish(t, QoS::AtLeastOnce, false, p).await.unwrap();
        }
        client
    });
    let mut acked = 0;
    while acked < n {
        match tokio::time::timeout(Duration::from_secs(10), events.poll()).await {
            Ok(Ok(Event::Incoming(Packet::PubAck(_)))) => acked += 1,
            Ok(Ok(_)) => {}
            other => panic!("publishing failed after {acked} acks: {other:?}"),
        }
    }
    let _ = sender.await.unwrap().disconnect().await;
}

async fn counts(db: &TestDb) -> (i64, i64) {
    let c = db.client().await.unwrap();
    let p: i64 = c
        .query_one("SELECT count(*) FROM positions", &[])
        .await
        .map(|r| r.get(0))
        .unwrap_or(-1);
    let r: i64 = c
        .query_one("SELECT count(*) FROM rejects", &[])
        .await
        .map(|r| r.get(0))
        .unwrap_or(-1);
    (p, r)
}

#[tokio::test(flavor = "multi_thread")]
async fn wal_records_present_at_start_are_written_once_and_no_more() {
    let t = Instant::now();
    let db = TestDb::create().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let wal_dir = dir.path().join("wal");
    // 1. The database is unreachable (nothing listens on that port): positions are still
    //    acknowledged, from the WAL.
    let unreachable = format!("postgres://nobody:nothing@127.0.0.1:{}/none", free_port());
    let mut ingest = Ingest::start(IngestOptions {
        database_url: unreachable,
        wal_dir: wal_dir.clone(),
        args: vec!["--batch-linger".into(), "20ms".into()],
        allow_anonymous: true,
    })
    .unwrap();
    let t0 = chrono::Utc::now().timestamp_millis() - 100_000;
    let mut messages: Vec<(String, String)> = (0..200)
        .map(|i| {
            (
                format!("devices/replay-{}/positions", i % 10),
                format!(r#"{{"time": {}, "lat": 1.0, "lon": 2.0}}"#, t0 + i),
            )
        })
        .collect();
    messages.push((
        "devices/replay-0/positions".into(),
        r#"{"time": 1, "lat": 1.0}"#.into(),
    ));
    publish(ingest.mqtt_port, messages).await;
    let (status, body) = ingest.http_get("/readyz").unwrap();
    assert_eq!(
        status, 503,
        "readyz must report the database outage: {body}"
    );
    assert!(body.contains("database"), "{body}");
    let exit = ingest.terminate(Duration::from_secs(30)).unwrap();
    assert!(exit.success(), "graceful exit expected, got {exit}");

    eprintln!("replay: {:?}", t.elapsed());
    // 2. Start with the database: the WAL is replayed into it.
    let mut opts = ingest.opts.clone();
    opts.database_url = db.url.clone();
    let mut ingest = Ingest::start(opts).unwrap();
    ingest.wait_ready(Duration::from_secs(30)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while counts(&db).await != (200, 1) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(counts(&db).await, (200, 1));

    eprintln!("replay: {:?}", t.elapsed());
    // 3. SIGKILL right away (segments may not be released yet), restart: the checkpoint in the
    //    database prevents a second write, rejects included (they have no unique key).
    ingest.kill().unwrap();
    ingest.restart().unwrap();
    ingest.wait_ready(Duration::from_secs(30)).unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(counts(&db).await, (200, 1));

    eprintln!("replay: {:?}", t.elapsed());
    // 4. And a graceful restart as well.
    let exit = ingest.terminate(Duration::from_secs(30)).unwrap();
    assert!(exit.success());
    let ingest = Ingest::start(ingest.opts.clone()).unwrap();
    ingest.wait_ready(Duration::from_secs(30)).unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(counts(&db).await, (200, 1));
    eprintln!("replay: {:?}", t.elapsed());
    drop(ingest);
    db.drop_now().await.unwrap();
}
