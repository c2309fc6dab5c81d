//! Connection storm (`cargo bench --bench connect_storm`): N registered devices reconnect at
//! once to the real ingest (release build), authenticated against the local database. Each
//! device behaves like a tracker: it sends CONNECT, waits for the CONNACK at most its own
//! timeout, and on a refusal or a timeout retries after a short randomised backoff, until it
//! is in. Three storms:
//! - cold: right after an ingest restart (empty verification cache: a registry query and a
//!   verification per device, HMAC-SHA-256 since generated secrets have the fast scheme);
//! - warm: every device reconnects within the cache TTL (no query, no argon2);
//! - stale: every device reconnects after the TTL (one query each, no argon2).
//!
//! For each: wall time until every device is connected, logins accepted per second,
//! time-to-connect percentiles, refusals by kind (busy = CONNACK "server unavailable", the
//! ingest's "retry later" while the verifier is saturated or the rate limit is reached, timeout = no CONNACK within the device's timeout, other), registry
//! queries (`ingest_auth_db_queries_total`, which also counts the revocation loop's one query
//! per interval) and verifications by scheme (`ingest_auth_verifications_total`). Then the cost
//! of one argon2id verification in this process with 1, 2 and 4 threads.
//!
//! Never panics on refusals or timeouts: a device that is still out after
//! BENCH_STORM_MAX_ATTEMPTS attempts is reported as given up.
//!
//! Needs the local database (`scripts/local-db start`). Settings (environment):
//! BENCH_STORM_DEVICES (300), BENCH_STORM_CONNACK_TIMEOUT_S (10, the device's wait for a
//! CONNACK), BENCH_STORM_RETRY_MS (500, first backoff; doubles up to 8x, ±50 % jitter),
//! BENCH_STORM_MAX_ATTEMPTS (40), BENCH_STORM_TTL_S (20, the ingest's auth cache TTL).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use accoreboot_edge::harness::{env_or, Ingest, IngestOptions, TestDb};
use futures_util::StreamExt;
use rumqttc::{AsyncClient, ConnectReturnCode, ConnectionError, Event, MqttOptions, Packet};
use tokio::task::JoinHandle;

#[derive(Debug, Clone, Copy)]
struct Settings {
    connack_timeout_s: u64,
    retry_ms: u64,
    max_attempts: u32,
}

/// What happened to one device during a storm.
struct DeviceRun {
    /// From the storm's start to its CONNACK; `None` when it gave up.
    connected_after: Option<Duration>,
    attempts: u32,
    busy: u32,
    timeouts: u32,
    /// Other failures by kind (refusal code or error).
    other: BTreeMap<String, u32>,
    session: Option<(AsyncClient, JoinHandle<()>)>,
}

/// Deterministic jitter in [0.5, 1.5) from the device and the attempt (splitmix64).
fn jitter(device: usize, attempt: u32) -> f64 {
    let mut z = (device as u64) << 32 ^ u64::from(attempt) ^ 0x9E37_79B9_7F4A_7C15;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    0.5 + (z >> 11) as f64 / (1u64 << 53) as f64
}

/// One tracker: connect, on failure back off and retry, until in or out of attempts.
async fn device(
    port: u16,
    index: usize,
    id: String,
    secret: String,
    s: Settings,
    started: Instant,
) -> DeviceRun {
    let mut run = DeviceRun {
        connected_after: None,
        attempts: 0,
        busy: 0,
        timeouts: 0,
        other: BTreeMap::new(),
        session: None,
    };
    while run.attempts < s.max_attempts {
        run.attempts += 1;
        let mut o = MqttOptions::new(format!("storm-{id}"), "127.0.0.1", port);
        o.set_credentials(id.clone(), secret.clone())
            .set_keep_alive(Duration::from_secs(120));
        let (client, mut events) = AsyncClient::new(o, 8);
        events
            .network_options
            .set_connection_timeout(s.connack_timeout_s);
        match events.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                run.connected_after = Some(started.elapsed());
                // Keep the session alive until the client disconnects or the task is aborted.
                let keep = tokio::spawn(async move { while events.poll().await.is_ok() {} });
                run.session = Some((client, keep));
                return run;
            }
            Ok(other) => *run.other.entry(format!("{other:?}")).or_default() += 1,
            // "Retry later": the ingest refused for load (rate limit, no argon2 slot).
            Err(ConnectionError::ConnectionRefused(ConnectReturnCode::ServiceUnavailable)) => {
                run.busy += 1
            }
            Err(ConnectionError::NetworkTimeout) => run.timeouts += 1,
            Err(ConnectionError::ConnectionRefused(code)) => {
                *run.other.entry(format!("refused {code:?}")).or_default() += 1
            }
            Err(ConnectionError::Io(e)) => {
                *run.other.entry(format!("io {:?}", e.kind())).or_default() += 1
            }
            Err(e) => *run.other.entry(e.to_string()).or_default() += 1,
        }
        let step = s.retry_ms << (run.attempts - 1).min(3);
        let backoff = Duration::from_millis(step).mul_f64(jitter(index, run.attempts));
        tokio::time::sleep(backoff).await;
    }
    run
}

/// Server-side counters read before and after a storm.
#[derive(Debug, Clone, Copy)]
struct Counters {
    queries: f64,
    /// argon2id verifications (chosen secrets).
    verifications: f64,
    /// HMAC-SHA-256 verifications (generated secrets).
    fast_verifications: f64,
    verify_seconds: f64,
    busy: f64,
}

fn counters(ingest: &Ingest) -> Counters {
    Counters {
        queries: ingest.metric("ingest_auth_db_queries_total"),
        verifications: ingest.metric("ingest_auth_verifications_total{scheme=\"argon2id\"}"),
        fast_verifications: ingest
            .metric("ingest_auth_verifications_total{scheme=\"hmac-sha256\"}"),
        verify_seconds: ingest.metric("ingest_auth_verify_seconds_sum"),
        busy: ingest.metric("ingest_mqtt_auth_total{outcome=\"busy\"}"),
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

/// Runs one storm; returns the sessions to keep (or close) afterwards.
async fn storm(
    label: &str,
    ingest: &Ingest,
    devices: &[(String, String)],
    s: Settings,
) -> Vec<(AsyncClient, JoinHandle<()>)> {
    let before = counters(ingest);
    let started = Instant::now();
    let tasks: Vec<_> = devices
        .iter()
        .enumerate()
        .map(|(i, (id, secret))| {
            tokio::spawn(device(
                ingest.mqtt_port,
                i,
                id.clone(),
                secret.clone(),
                s,
                started,
            ))
        })
        .collect();
    let mut runs = Vec::with_capacity(tasks.len());
    for t in tasks {
        match t.await {
            Ok(r) => runs.push(r),
            Err(e) => eprintln!("  a device task failed: {e}"),
        }
    }
    let wall = started.elapsed();
    let after = counters(ingest);

    let mut times: Vec<Duration> = runs.iter().filter_map(|r| r.connected_after).collect();
    times.sort();
    let connected = times.len();
    let last = times.last().copied().unwrap_or(wall);
    let first_try = runs
        .iter()
        .filter(|r| r.connected_after.is_some() && r.attempts == 1)
        .count();
    let attempts: u32 = runs.iter().map(|r| r.attempts).sum();
    let busy: u32 = runs.iter().map(|r| r.busy).sum();
    let timeouts: u32 = runs.iter().map(|r| r.timeouts).sum();
    let mut other: BTreeMap<String, u32> = BTreeMap::new();
    for r in &runs {
        for (k, v) in &r.other {
            *other.entry(k.clone()).or_default() += v;
        }
    }
    let queries = after.queries - before.queries;
    let verifications = after.verifications - before.verifications;
    let fast = after.fast_verifications - before.fast_verifications;
    let n = devices.len();
    println!("{label}:");
    println!(
        "  connected {connected}/{n} in {:.2} s ({:.0} logins/s), {first_try} at the first attempt, {} gave up",
        last.as_secs_f64(),
        connected as f64 / last.as_secs_f64().max(1e-9),
        n - connected
    );
    println!(
        "  time to connect: p50 {:.0} ms, p90 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        percentile(&times, 0.50).as_secs_f64() * 1e3,
        percentile(&times, 0.90).as_secs_f64() * 1e3,
        percentile(&times, 0.99).as_secs_f64() * 1e3,
        percentile(&times, 1.0).as_secs_f64() * 1e3
    );
    println!(
        "  attempts {attempts} ({:.2} per device); refusals: busy {busy} (server counted {:.0}), timeout {timeouts}, other {}",
        attempts as f64 / n as f64,
        after.busy - before.busy,
        if other.is_empty() {
            "0".to_string()
        } else {
            format!("{other:?}")
        }
    );
    let per_verification = if verifications > 0.0 {
        format!(
            ", {:.1} ms each (wall, under the storm's contention)",
            (after.verify_seconds - before.verify_seconds) / verifications * 1e3
        )
    } else {
        String::new()
    };
    println!(
        "  registry queries {queries:.0} ({:.2} per device); HMAC verifications {fast:.0}; argon2 verifications {verifications:.0}{per_verification}",
        queries / n as f64
    );
    runs.into_iter().filter_map(|r| r.session).collect()
}

/// Disconnects every session and waits until the broker has let them all go. rumqttc keeps
/// the socket open after sending DISCONNECT and rmqtt 0.24 waits for the client to close it,
/// so the event loops are dropped (the socket closed) right after.
async fn disconnect_all(ingest: &Ingest, sessions: Vec<(AsyncClient, JoinHandle<()>)>) {
    let started = Instant::now();
    for (client, _) in &sessions {
        let _ = client.disconnect().await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    for (_, keep) in sessions {
        keep.abort();
    }
    // The gauge is refreshed every second.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut left = ingest.metric("ingest_mqtt_connected_clients");
    while left > 0.0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        left = ingest.metric("ingest_mqtt_connected_clients");
    }
    if left > 0.0 {
        println!("  ({left} sessions still connected 30 s after the disconnect)");
    }
    eprintln!(
        "  (all disconnected after {:.1} s)",
        started.elapsed().as_secs_f64()
    );
}

/// Verifications of `phc` (either scheme) per second in this process with `threads` threads
/// for ~2 s, and the mean time of one.
fn argon2_rate(threads: usize, phc: &Arc<String>, secret: &Arc<String>) -> (f64, Duration) {
    let run_for = Duration::from_secs(2);
    let started = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (phc, secret) = (phc.clone(), secret.clone());
            std::thread::spawn(move || {
                let mut n = 0u32;
                let mut busy = Duration::ZERO;
                while started.elapsed() < run_for {
                    let t = Instant::now();
                    if !matches!(ingest::auth::verify_secret(&secret, &phc), Ok(true)) {
                        break;
                    }
                    busy += t.elapsed();
                    n += 1;
                }
                (n, busy)
            })
        })
        .collect();
    let (mut total, mut busy) = (0u32, Duration::ZERO);
    for h in handles {
        if let Ok((n, b)) = h.join() {
            total += n;
            busy += b;
        }
    }
    let wall = started.elapsed().as_secs_f64();
    let each = if total > 0 {
        busy / total
    } else {
        Duration::ZERO
    };
    (f64::from(total) / wall, each)
}

fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, m)| m.trim().to_string())
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let load = std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ");
    format!("{cores} cores ({model}), load average {load}")
}

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("connection storm bench failed: {e:#}");
        std::process::exit(1);
    }
}

async fn run() -> anyhow::Result<()> {
    use anyhow::Context;

    let n: usize = env_or("BENCH_STORM_DEVICES", 300);
    let ttl_s: u64 = env_or("BENCH_STORM_TTL_S", 20);
    let s = Settings {
        connack_timeout_s: env_or("BENCH_STORM_CONNACK_TIMEOUT_S", 10),
        retry_ms: env_or("BENCH_STORM_RETRY_MS", 500),
        max_attempts: env_or("BENCH_STORM_MAX_ATTEMPTS", 40),
    };
    let db = TestDb::create()
        .await
        .context("local database: run scripts/local-db start")?;
    let dir = tempfile::tempdir()?;
    let ttl = format!("{ttl_s}s");
    let mut ingest = Ingest::start(IngestOptions {
        database_url: db.url.clone(),
        wal_dir: dir.path().join("wal"),
        // Production defaults except: no login rate limit (the storm is what is measured)
        // and a cache TTL long enough to separate the warm and the stale storm.
        args: ["--max-connection-rate", "0", "--auth-cache-ttl", &ttl]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        allow_anonymous: false,
    })?;
    ingest.wait_ready(Duration::from_secs(60))?;

    // Register the devices straight in the registry (same hashing as `ingest device add`).
    let pool = ingest::db::pool(&db.url, None, 2)?;
    let registry = Arc::new(ingest::auth::Registry::new(pool));
    let added: Vec<_> = futures_util::stream::iter(0..n)
        .map(|i| {
            let registry = registry.clone();
            async move {
                let id = format!("storm-{i:05}");
                let secret = registry.add(&id, ingest::auth::Kind::Device).await;
                secret.map(|s| (id, s))
            }
        })
        .buffer_unordered(2)
        .collect()
        .await;
    let devices = added
        .into_iter()
        .collect::<Result<Vec<_>, _>>()
        .context("registering the devices")?;

    // Cold: a restart empties the verification cache.
    ingest.restart()?;
    ingest.wait_ready(Duration::from_secs(60))?;

    println!(
        "connection storm: {n} devices against the database; ingest release build, default \
         handshake timeout and verification slots, auth cache TTL {ttl}; devices wait {} s \
         for a CONNACK and retry after {} ms (doubling to 8x, ±50 %)",
        s.connack_timeout_s, s.retry_ms
    );
    println!("machine: {}", machine());
    let sessions = storm(
        "cold (after an ingest restart: empty cache)",
        &ingest,
        &devices,
        s,
    )
    .await;
    disconnect_all(&ingest, sessions).await;
    let sessions = storm("warm (reconnect within the TTL)", &ingest, &devices, s).await;
    disconnect_all(&ingest, sessions).await;
    tokio::time::sleep(Duration::from_secs(ttl_s + 1)).await;
    let sessions = storm("stale (reconnect after the TTL)", &ingest, &devices, s).await;
    disconnect_all(&ingest, sessions).await;
    drop(ingest);

    // The cost of one verification, without the broker around.
    let secret = Arc::new(ingest::auth::generate_secret());
    let phc = Arc::new(ingest::auth::hash_secret_slow(&secret)?);
    println!("argon2id m=19456 KiB, t=2, p=1 verification in this process:");
    for threads in [1, 2, 4] {
        let (rate, each) = argon2_rate(threads, &phc, &secret);
        println!(
            "  {threads} thread(s): {rate:>6.1} verifications/s, {:.1} ms each",
            each.as_secs_f64() * 1e3
        );
    }
    // The scheme generated secrets have now, for comparison (same measurement).
    let fast = Arc::new(ingest::auth::hash_secret(&secret)?);
    let (rate, each) = argon2_rate(1, &fast, &secret);
    println!(
        "HMAC-SHA-256 (generated secrets) verification, 1 thread: {rate:>10.0} verifications/s, {:.2} µs each",
        each.as_secs_f64() * 1e6
    );
    db.drop_now().await.ok();
    Ok(())
}
