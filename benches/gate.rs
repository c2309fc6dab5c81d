//! What the front gate costs (`cargo bench --bench gate`): the same raw MQTT 3.1.1 publishers,
//! pipelining QoS 1 publishes, talk to one real ingest two ways in one run, alternately:
//! - through the gate (the public port, as every device does);
//! - straight to rmqtt's loopback listener (the client sends the PROXY header itself), which is
//!   what the ingest would do without the gate.
//!
//! Prints acknowledged positions/s and PUBACK latency p50 / p99 for each, and the ratios. The
//! WAL fsync is in both paths, so the difference is the relay. Needs the local database
//! (`scripts/local-db start`). Settings (environment): BENCH_GATE_CONNECTIONS (50),
//! BENCH_GATE_SECONDS (10 per round), BENCH_GATE_WINDOW (32 publishes in flight per connection),
//! BENCH_GATE_ROUNDS (6, after one warm-up round through the gate).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use accoreboot_edge::harness::mqtt_wire::{self, packet, string};
use accoreboot_edge::harness::{env_or, Ingest, IngestOptions, TestDb};
use hdrhistogram::Histogram;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn publish(topic: &str, id: u16, payload: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    string(topic.as_bytes(), &mut b);
    b.extend_from_slice(&id.to_be_bytes());
    b.extend_from_slice(payload);
    packet(0x32, &b)
}

/// The PROXY v2 header rmqtt's loopback listener expects (IPv4, TCP).
fn proxy_header(client: SocketAddr, server: SocketAddr) -> Vec<u8> {
    let (SocketAddr::V4(c), SocketAddr::V4(s)) = (client, server) else {
        panic!("IPv4 only");
    };
    let mut h = vec![
        0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A, 0x21, 0x11, 0, 12,
    ];
    h.extend_from_slice(&c.ip().octets());
    h.extend_from_slice(&s.ip().octets());
    h.extend_from_slice(&c.port().to_be_bytes());
    h.extend_from_slice(&s.port().to_be_bytes());
    h
}

/// One device: publishes with `window` in flight until `until`; returns acked count and
/// latencies (µs).
async fn device(
    addr: SocketAddr,
    proxy: bool,
    n: usize,
    window: u16,
    until: Instant,
) -> (u64, Histogram<u64>) {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.set_nodelay(true).unwrap();
    if proxy {
        let h = proxy_header(s.local_addr().unwrap(), addr);
        s.write_all(&h).await.unwrap();
    }
    let id = format!("gate-bench-{n}");
    s.write_all(&mqtt_wire::connect(&id, None)).await.unwrap();
    let mut connack = [0u8; 4];
    s.read_exact(&mut connack).await.expect("CONNACK");
    assert_eq!(connack, [0x20, 2, 0, 0], "login refused");
    let topic = format!("devices/{id}/positions");
    let (mut rd, mut wr) = s.into_split();
    let mut sent_at = vec![None::<Instant>; 65536];
    let mut hist = Histogram::<u64>::new(3).unwrap();
    let mut next: u16 = 1;
    let mut in_flight = 0u16;
    let mut acked = 0u64;
    let mut buf = vec![0u8; 64 * 1024];
    let mut pending = Vec::new();
    let mut t = chrono::Utc::now().timestamp_millis() - 3_600_000;
    loop {
        if Instant::now() < until {
            let mut out = Vec::new();
            while in_flight < window {
                t += 1;
                let payload = format!(r#"{{"time": {t}, "lat": 48.85, "lon": 2.35}}"#);
                out.extend(publish(&topic, next, payload.as_bytes()));
                sent_at[next as usize] = Some(Instant::now());
                next = if next == u16::MAX { 1 } else { next + 1 };
                in_flight += 1;
            }
            if !out.is_empty() {
                wr.write_all(&out).await.unwrap();
            }
        } else if in_flight == 0 {
            return (acked, hist);
        }
        let got = rd.read(&mut buf).await.expect("read");
        assert!(got > 0, "the ingest closed the connection");
        pending.extend_from_slice(&buf[..got]);
        let mut at = 0;
        while pending.len() - at >= 4 {
            assert_eq!(pending[at], 0x40, "expected PUBACK, got {:#x}", pending[at]);
            let pid = u16::from_be_bytes([pending[at + 2], pending[at + 3]]);
            if let Some(t0) = sent_at[pid as usize].take() {
                hist.record(t0.elapsed().as_micros() as u64).unwrap();
            }
            acked += 1;
            in_flight -= 1;
            at += 4;
        }
        pending.drain(..at);
    }
}

struct Round {
    per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
}

async fn round(
    addr: SocketAddr,
    proxy: bool,
    conns: usize,
    window: u16,
    secs: u64,
    base: usize,
) -> Round {
    let started = Instant::now();
    let until = started + Duration::from_secs(secs);
    let tasks: Vec<_> = (0..conns)
        .map(|i| tokio::spawn(device(addr, proxy, base + i, window, until)))
        .collect();
    let mut total = 0;
    let mut hist = Histogram::<u64>::new(3).unwrap();
    for t in tasks {
        let (n, h) = t.await.expect("device task");
        total += n;
        hist.add(h).unwrap();
    }
    Round {
        per_s: total as f64 / started.elapsed().as_secs_f64(),
        p50_ms: hist.value_at_quantile(0.50) as f64 / 1000.0,
        p99_ms: hist.value_at_quantile(0.99) as f64 / 1000.0,
    }
}

/// rmqtt's loopback MQTT port, from the ingest's start-up log.
fn loopback_port(ingest: &Ingest) -> SocketAddr {
    let log = ingest.log();
    let line = log
        .lines()
        .find(|l| l.contains("behind the gate"))
        .expect("the ingest logs its loopback listener");
    let at = line.find("mqtt=Some(").expect("mqtt=Some(addr)") + "mqtt=Some(".len();
    let end = line[at..].find(')').unwrap() + at;
    line[at..end].parse().expect("a socket address")
}

#[tokio::main]
async fn main() {
    let conns: usize = env_or("BENCH_GATE_CONNECTIONS", 50);
    let secs: u64 = env_or("BENCH_GATE_SECONDS", 10);
    let window: u16 = env_or("BENCH_GATE_WINDOW", 32);
    let rounds: usize = env_or("BENCH_GATE_ROUNDS", 6);
    let db = TestDb::create()
        .await
        .expect("local database: run scripts/local-db start");
    let dir = tempfile::tempdir().unwrap();
    let ingest = Ingest::start(IngestOptions {
        database_url: db.url.clone(),
        wal_dir: dir.path().join("wal"),
        args: ["--device-message-rate", "0", "--max-connection-rate", "0"]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        allow_anonymous: true,
    })
    .expect("ingest starts");
    ingest
        .wait_ready(Duration::from_secs(60))
        .expect("ingest ready");
    let gated: SocketAddr = ([127, 0, 0, 1], ingest.mqtt_port).into();
    let direct = loopback_port(&ingest);

    println!(
        "front gate: {conns} connections x {window} in flight, {secs} s per round, a warm-up \
         round then {rounds} alternating rounds"
    );
    let warm = round(gated, false, conns, window, secs, 0).await;
    println!(
        "  warm-up   gated: {:>9.0} acked/s (not counted)",
        warm.per_s
    );
    let mut results: [Vec<Round>; 2] = [Vec::new(), Vec::new()];
    for r in 0..rounds {
        let proxy = r % 2 == 1;
        let addr = if proxy { direct } else { gated };
        let res = round(addr, proxy, conns, window, secs, (r + 1) * conns).await;
        println!(
            "  round {r} {:>7}: {:>9.0} acked/s  p50 {:>7.2} ms  p99 {:>7.2} ms",
            if proxy { "direct" } else { "gated" },
            res.per_s,
            res.p50_ms,
            res.p99_ms
        );
        results[usize::from(proxy)].push(res);
    }
    let mean = |v: &[Round], f: fn(&Round) -> f64| v.iter().map(f).sum::<f64>() / v.len() as f64;
    let (g, d) = (&results[0], &results[1]);
    println!(
        "gated : {:>9.0} acked/s  p50 {:.2} ms  p99 {:.2} ms",
        mean(g, |r| r.per_s),
        mean(g, |r| r.p50_ms),
        mean(g, |r| r.p99_ms)
    );
    println!(
        "direct: {:>9.0} acked/s  p50 {:.2} ms  p99 {:.2} ms",
        mean(d, |r| r.per_s),
        mean(d, |r| r.p50_ms),
        mean(d, |r| r.p99_ms)
    );
    println!(
        "ratio gated/direct: throughput {:.2}, p50 {:.2}, p99 {:.2}",
        mean(g, |r| r.per_s) / mean(d, |r| r.per_s),
        mean(g, |r| r.p50_ms) / mean(d, |r| r.p50_ms),
        mean(g, |r| r.p99_ms) / mean(d, |r| r.p99_ms)
    );
    drop(ingest);
    db.drop_now().await.unwrap();
}
