//! Shared helpers of the `security_*` tests: accounts created through the real `ingest device`
//! command, the real ingest started with authentication on, and MQTT 3.1.1 / 5 clients.
#![allow(dead_code, unused_imports)]

use std::process::Command;
use std::time::{Duration, Instant};

use accoreboot_edge::harness::{ingest_binary, Ingest, IngestOptions, TestDb};

/// Runs `ingest device --database-url URL <args>` and returns (success, stdout, stderr).
pub fn device_cmd(db_url: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(ingest_binary().expect("ingest binary"))
        .arg("device")
        .arg("--database-url")
        .arg(db_url)
        .args(args)
        .env("INGEST_LOG", "warn")
        .output()
        .expect("run ingest device");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Adds an account with the CLI and returns the secret it printed.
pub fn add_account(db_url: &str, id: &str, service: bool) -> String {
    let mut args = vec!["add", id];
    if service {
        args.push("--service");
    }
    let (ok, out, err) = device_cmd(db_url, &args);
    assert!(ok, "ingest device add {id} failed: {err}");
    secret_from(&out)
}

/// The secret in the output of `add` or `rotate-secret`.
pub fn secret_from(out: &str) -> String {
    out.lines()
        .find_map(|l| {
            l.split_once("secret: ").or_else(|| {
                l.split_once("secret for ")
                    .and_then(|(_, r)| r.split_once(": "))
            })
        })
        .map(|(_, s)| s.trim().to_string())
        .unwrap_or_else(|| panic!("no secret in {out:?}"))
}

/// Starts ingest with authentication on (anonymous off) and a 1 s cache/revocation interval.
pub fn start(db: &TestDb, dir: &tempfile::TempDir, extra: &[&str]) -> Ingest {
    let mut args: Vec<String> = vec![
        "--batch-linger".into(),
        "20ms".into(),
        "--auth-cache-ttl".into(),
        "1s".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let ingest = Ingest::start(IngestOptions {
        database_url: db.url.clone(),
        wal_dir: dir.path().join("wal"),
        args,
        allow_anonymous: false,
    })
    .expect("ingest starts");
    ingest
        .wait_ready(Duration::from_secs(30))
        .expect("ingest ready");
    ingest
}

/// A project-format position at `t` (Unix ms).
pub fn position(t: i64) -> String {
    format!(r#"{{"time": {t}, "lat": 48.85, "lon": 2.35}}"#)
}

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Polls `sql` (a count) until it reaches `expected` or 20 s pass; returns the last count.
pub async fn wait_count(db: &TestDb, sql: &str, expected: i64) -> i64 {
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

/// Counts a metric's samples whose line contains every one of `parts` (sum of values).
pub fn metric(ingest: &Ingest, name: &str, parts: &[&str]) -> f64 {
    let (_, body) = ingest.http_get("/metrics").expect("metrics");
    body.lines()
        .filter(|l| l.starts_with(name) && parts.iter().all(|p| l.contains(p)))
        .filter_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse::<f64>().ok()))
        .sum()
}

pub mod v4 {
    use std::time::Duration;

    pub use rumqttc::{
        AsyncClient, ConnectReturnCode, ConnectionError, Event, EventLoop, MqttOptions, Packet, QoS,
    };

    pub fn opts(client_id: &str, port: u16, user: &str, pass: &str) -> MqttOptions {
        let mut o = MqttOptions::new(client_id, "127.0.0.1", port);
        o.set_keep_alive(Duration::from_secs(30));
        o.set_credentials(user, pass);
        // Let big packets leave the client so that the server's limits are what is tested.
        o.set_max_packet_size(1 << 20, 1 << 20);
        o
    }

    /// Connects and waits for CONNACK: the client, or the connection error.
    pub async fn connect(opts: MqttOptions) -> Result<(AsyncClient, EventLoop), ConnectionError> {
        let (client, mut events) = AsyncClient::new(opts, 64);
        loop {
            match tokio::time::timeout(Duration::from_secs(15), events.poll()).await {
                Ok(Ok(Event::Incoming(Packet::ConnAck(_)))) => return Ok((client, events)),
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return Err(e),
                Err(_) => panic!("no CONNACK within 15 s"),
            }
        }
    }

    /// Waits for the next incoming packet matching `f`, or the connection error.
    pub async fn next_matching<T>(
        events: &mut EventLoop,
        wait: Duration,
        mut f: impl FnMut(&Packet) -> Option<T>,
    ) -> Result<Option<T>, ConnectionError> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, events.poll()).await {
                Ok(Ok(Event::Incoming(p))) => {
                    if let Some(t) = f(&p) {
                        return Ok(Some(t));
                    }
                }
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return Err(e),
                Err(_) => return Ok(None),
            }
        }
    }
}

pub mod v5 {
    use std::time::Duration;

    pub use rumqttc::v5::mqttbytes::v5::{
        ConnectReturnCode, Packet, PubAckReason, SubscribeReasonCode,
    };
    pub use rumqttc::v5::mqttbytes::QoS;
    pub use rumqttc::v5::{AsyncClient, ConnectionError, Event, EventLoop, MqttOptions};

    pub fn opts(client_id: &str, port: u16, user: &str, pass: &str) -> MqttOptions {
        let mut o = MqttOptions::new(client_id, "127.0.0.1", port);
        o.set_keep_alive(Duration::from_secs(30));
        o.set_credentials(user, pass);
        o
    }

    pub async fn connect(opts: MqttOptions) -> Result<(AsyncClient, EventLoop), ConnectionError> {
        let (client, mut events) = AsyncClient::new(opts, 64);
        loop {
            match tokio::time::timeout(Duration::from_secs(15), events.poll()).await {
                Ok(Ok(Event::Incoming(Packet::ConnAck(_)))) => return Ok((client, events)),
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return Err(e),
                Err(_) => panic!("no CONNACK within 15 s"),
            }
        }
    }

    pub async fn next_matching<T>(
        events: &mut EventLoop,
        wait: Duration,
        mut f: impl FnMut(&Packet) -> Option<T>,
    ) -> Result<Option<T>, ConnectionError> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, events.poll()).await {
                Ok(Ok(Event::Incoming(p))) => {
                    if let Some(t) = f(&p) {
                        return Ok(Some(t));
                    }
                }
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return Err(e),
                Err(_) => return Ok(None),
            }
        }
    }
}
