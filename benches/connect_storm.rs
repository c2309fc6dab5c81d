//! Connection storm (`cargo bench --bench connect_storm`): N registered devices reconnect at
//! once to the real ingest, authenticated against the local database. Prints, for a cold
//! storm (empty verification cache: one registry query and one argon2id verification per
//! device) and a warm one (every device reconnecting within the cache TTL):
//! - logins accepted per second (first CONNECT sent to last CONNACK received);
//! - registry queries the storm caused, in all and per login (from the ingest's own
//!   `ingest_auth_db_queries_total`).
//!
//! Needs the local database (`scripts/local-db start`). Settings (environment):
//! BENCH_STORM_DEVICES (300).

use std::time::{Duration, Instant};

use accoreboot_edge::harness::{env_or, Ingest, IngestOptions, TestDb};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet};

fn metric(ingest: &Ingest, name: &str) -> f64 {
    let (_, body) = ingest.http_get("/metrics").expect("metrics endpoint");
    body.lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

/// Connects every device at once; returns (logins per second, clients kept connected).
async fn storm(port: u16, devices: &[(String, String)]) -> (f64, Vec<AsyncClient>) {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (id, secret) in devices {
        let mut o = MqttOptions::new(format!("storm-{id}"), "127.0.0.1", port);
        o.set_credentials(id.clone(), secret.clone())
            .set_keep_alive(Duration::from_secs(60));
        tasks.push(tokio::spawn(async move {
            let (client, mut events) = AsyncClient::new(o, 8);
            loop {
                match tokio::time::timeout(Duration::from_secs(120), events.poll()).await {
                    Ok(Ok(Event::Incoming(Packet::ConnAck(_)))) => break,
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => panic!("login refused during the storm: {e}"),
                    Err(_) => panic!("no CONNACK within 120 s"),
                }
            }
            // Keep the connection alive until the client is dropped.
            tokio::spawn(async move { while events.poll().await.is_ok() {} });
            client
        }));
    }
    let mut clients = Vec::new();
    for t in tasks {
        clients.push(t.await.expect("storm task"));
    }
    (
        devices.len() as f64 / started.elapsed().as_secs_f64(),
        clients,
    )
}

#[tokio::main]
async fn main() {
    let n: usize = env_or("BENCH_STORM_DEVICES", 300);
    let db = TestDb::create()
        .await
        .expect("local database: run scripts/local-db start");
    let dir = tempfile::tempdir().unwrap();
    let ingest = Ingest::start(IngestOptions {
        database_url: db.url.clone(),
        wal_dir: dir.path().join("wal"),
        args: ["--max-connection-rate", "0", "--auth-cache-ttl", "10m"]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        allow_anonymous: false,
    })
    .expect("ingest starts");
    ingest
        .wait_ready(Duration::from_secs(60))
        .expect("ingest ready");

    // Register the devices straight in the registry (same hashing as `ingest device add`).
    let pool = ingest::db::pool(&db.url, None, 2).unwrap();
    let registry = ingest::auth::Registry::new(pool);
    let mut devices = Vec::with_capacity(n);
    for i in 0..n {
        let id = format!("storm-{i:05}");
        let secret = registry
            .add(&id, ingest::auth::Kind::Device)
            .await
            .expect("register device");
        devices.push((id, secret));
    }

    println!("connection storm: {n} devices, authenticated against the database");
    let q0 = metric(&ingest, "ingest_auth_db_queries_total");
    let (cold_rate, clients) = storm(ingest.mqtt_port, &devices).await;
    let q1 = metric(&ingest, "ingest_auth_db_queries_total");
    for c in &clients {
        let _ = c.disconnect().await;
    }
    drop(clients);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let q2 = metric(&ingest, "ingest_auth_db_queries_total");
    let (warm_rate, clients) = storm(ingest.mqtt_port, &devices).await;
    let q3 = metric(&ingest, "ingest_auth_db_queries_total");
    println!(
        "  cold (cache empty):   {cold_rate:>8.0} logins/s, {:>6.0} registry queries ({:.2} per login)",
        q1 - q0,
        (q1 - q0) / n as f64
    );
    println!(
        "  warm (within TTL):    {warm_rate:>8.0} logins/s, {:>6.0} registry queries ({:.2} per login)",
        q3 - q2,
        (q3 - q2) / n as f64
    );
    drop(clients);
    drop(ingest);
    db.drop_now().await.ok();
}
