//! Throughput of payload decoding and of the WAL record encoding, in positions per second on
//! one core. Run with `cargo bench -p ingest --bench position`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use ingest::position::{decode, decode_record, encode_record, Position, ValidationConfig};

/// Runs `f` (which handles `per_call` positions) repeatedly for about `budget`, after a
/// warm-up, and prints positions/s.
fn measure(name: &str, per_call: usize, budget: Duration, mut f: impl FnMut()) {
    let warm = Instant::now();
    while warm.elapsed() < budget / 10 {
        f();
    }
    let mut calls = 0u64;
    let start = Instant::now();
    while start.elapsed() < budget {
        for _ in 0..16 {
            f();
        }
        calls += 16;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let positions = calls as f64 * per_call as f64;
    println!(
        "{name:<40} {:>12.0} positions/s   {:>9.3} µs/call",
        positions / elapsed,
        elapsed * 1e6 / calls as f64
    );
}

fn received() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 27, 18, 0, 0).unwrap()
}

fn project_point(i: usize) -> String {
    let ms = received().timestamp_millis() - 100_000 + i as i64 * 1000;
    format!(
        r#"{{"time":{ms},"lat":{:.6},"lon":{:.6},"alt":35.5,"speed":12.4,"heading":271.0,"accuracy":4.0,"satellites":9,"battery":87}}"#,
        48.85 + i as f64 * 1e-4,
        2.35 + i as f64 * 1e-4
    )
}

fn positions(n: usize, attributes: bool) -> Vec<Position> {
    (0..n)
        .map(|i| Position {
            device_id: "truck-000042".to_owned(),
            time: received() - chrono::Duration::seconds(i as i64),
            lat: 48.85 + i as f64 * 1e-4,
            lon: 2.35 + i as f64 * 1e-4,
            alt: Some(35.5),
            speed: Some(12.4),
            heading: Some(271.0),
            accuracy: Some(4.0),
            satellites: Some(9),
            battery: Some(87.0),
            attributes: attributes.then(|| serde_json::json!({"ignition": true, "fuel": 41.5})),
        })
        .collect()
}

fn main() {
    // `cargo test --benches` runs this binary with `--bench` absent: keep that run short.
    let budget = if std::env::args().any(|a| a == "--bench") {
        Duration::from_secs(2)
    } else {
        Duration::from_millis(20)
    };
    let cfg = ValidationConfig::default();

    let single = project_point(0);
    measure("decode project JSON, 1 point", 1, budget, || {
        let d = decode(
            "devices/truck-000042/positions",
            black_box(single.as_bytes()),
            Some("truck-000042"),
            received(),
            &cfg,
        );
        assert_eq!(d.positions().len(), 1);
    });

    let array = format!(
        "[{}]",
        (0..100).map(project_point).collect::<Vec<_>>().join(",")
    );
    measure("decode project JSON, 100-point array", 100, budget, || {
        let d = decode(
            "devices/truck-000042/positions",
            black_box(array.as_bytes()),
            Some("truck-000042"),
            received(),
            &cfg,
        );
        assert_eq!(d.positions().len(), 100);
    });

    let owntracks = format!(
        r#"{{"_type":"location","tid":"ph","lat":52.52,"lon":13.405,"tst":{},"acc":12,"alt":48,"vac":3,"vel":36,"cog":90,"batt":64,"conn":"m","t":"u"}}"#,
        received().timestamp() - 60
    );
    measure("decode OwnTracks location", 1, budget, || {
        let d = decode(
            "owntracks/alice/phone",
            black_box(owntracks.as_bytes()),
            None,
            received(),
            &cfg,
        );
        assert_eq!(d.positions().len(), 1);
    });

    for (label, attributes) in [("", false), (", with attributes", true)] {
        let batch = positions(100, attributes);
        let encoded = encode_record(&batch, &[]);
        measure(
            &format!("encode_record, 100 positions{label}"),
            100,
            budget,
            || {
                black_box(encode_record(black_box(&batch), &[]));
            },
        );
        measure(
            &format!("decode_record, 100 positions{label}"),
            100,
            budget,
            || {
                let (p, _) = decode_record(black_box(&encoded)).unwrap_or_default();
                assert_eq!(p.len(), 100);
            },
        );
        println!(
            "  record size: {} bytes for 100 positions ({:.1} bytes/position)",
            encoded.len(),
            encoded.len() as f64 / 100.0
        );
    }

    let one = positions(1, false);
    let encoded_one = encode_record(&one, &[]);
    measure("encode_record, 1 position", 1, budget, || {
        black_box(encode_record(black_box(&one), &[]));
    });
    measure("decode_record, 1 position", 1, budget, || {
        let (p, _) = decode_record(black_box(&encoded_one)).unwrap_or_default();
        assert_eq!(p.len(), 1);
    });
}
