//! The fuzz harnesses as a plain test (no sanitizer, no cargo-fuzz): every harness of
//! `ingest/fuzz/targets.rs` (payload decoders, the WAL position record, the WAL envelope, the
//! WAL record reader, the ACL topic rules) is fed its seed corpus and every saved crash in
//! `ingest/fuzz/regressions/<target>/` (the regression tests), then deterministic random
//! mutations of the seeds for a bounded time (`SECURITY_FUZZ_SECONDS` per target, default 4;
//! `SECURITY_FUZZ_SEED` to vary). A panic reports the target and writes the input to
//! `target/fuzz-failures/` so it can be added to `ingest/fuzz/regressions/<target>/`.
//!
//! The coverage-guided runs (libFuzzer, AddressSanitizer) are `scripts/fuzz`, which
//! `scripts/test` also runs: see docs/security.md, "Fuzzing".

#[path = "../ingest/fuzz/targets.rs"]
mod targets;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

type Harness = fn(&[u8]);

const TARGETS: &[(&str, Harness)] = &[
    ("position_decode", targets::position_decode),
    ("position_record", targets::position_record),
    ("envelope", targets::envelope),
    ("wal_record", targets::wal_record),
    ("acl", targets::acl),
];

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("ingest/fuzz")
}

fn files(dir: &Path) -> Vec<Vec<u8>> {
    let mut out: Vec<(PathBuf, Vec<u8>)> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .map(|p| (p.clone(), std::fs::read(&p).unwrap()))
            .collect(),
        Err(_) => Vec::new(),
    };
    out.sort();
    out.into_iter().map(|(_, b)| b).collect()
}

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

const INTERESTING: &[&[u8]] = &[
    b"\xff",
    b"\x00",
    b"\x7f",
    b"\x80",
    b"{",
    b"}",
    b"[",
    b"]",
    b"\"",
    b"\\u0000",
    b"1e999",
    b"-0",
    b"9999999999999999999999",
    b"null",
    b"\xc0\xaf",
    b"\xd7\x1a\x57\x4c",
];

fn mutate(rng: &mut Rng, input: &[u8], other: &[u8]) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..=rng.below(4) {
        match rng.below(8) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
            1 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] = rng.next() as u8;
            }
            2 => {
                let i = rng.below(v.len() + 1);
                let tok = INTERESTING[rng.below(INTERESTING.len())];
                v.splice(i..i, tok.iter().copied());
            }
            3 if !v.is_empty() => {
                let a = rng.below(v.len());
                let b = (a + rng.below(16) + 1).min(v.len());
                v.drain(a..b);
            }
            4 if !v.is_empty() => {
                let a = rng.below(v.len());
                let b = (a + rng.below(64) + 1).min(v.len());
                let chunk = v[a..b].to_vec();
                let at = rng.below(v.len() + 1);
                v.splice(at..at, chunk);
            }
            5 => v.truncate(rng.below(v.len() + 1)),
            6 if !other.is_empty() => {
                let cut = rng.below(v.len() + 1);
                let from = rng.below(other.len());
                v.truncate(cut);
                v.extend_from_slice(&other[from..]);
            }
            _ => {
                let n = rng.below(32);
                let at = rng.below(v.len() + 1);
                let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                v.splice(at..at, bytes);
            }
        }
    }
    v
}

fn run_one(name: &str, harness: Harness, input: &[u8]) {
    let result = std::panic::catch_unwind(|| harness(input));
    if result.is_err() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("target/fuzz-failures")
            .join(name);
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join(format!("crash-{}", std::process::id()));
        let _ = std::fs::write(&path, input);
        panic!(
            "fuzz target {name} panicked on an input of {} bytes, saved to {}",
            input.len(),
            path.display()
        );
    }
}

#[test]
fn every_fuzz_target_survives_its_corpus_regressions_and_random_mutations() {
    let seconds: u64 = std::env::var("SECURITY_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4);
    let seed: u64 = std::env::var("SECURITY_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5EC0_41D5);
    for (name, harness) in TARGETS {
        let corpus = files(&fuzz_dir().join("corpus").join(name));
        assert!(
            !corpus.is_empty(),
            "no seed corpus for {name} in ingest/fuzz/corpus/{name}/"
        );
        let regressions = files(&fuzz_dir().join("regressions").join(name));
        for input in corpus.iter().chain(regressions.iter()) {
            run_one(name, *harness, input);
        }
        let mut rng = Rng(seed ^ name.len() as u64 ^ 0x9E37_79B9_7F4A_7C15);
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let mut runs = 0u64;
        while Instant::now() < deadline {
            let a = &corpus[rng.below(corpus.len())];
            let b = &corpus[rng.below(corpus.len())];
            let input = mutate(&mut rng, a, b);
            run_one(name, *harness, &input);
            runs += 1;
        }
        eprintln!(
            "{name}: {} seeds, {} regressions, {runs} mutated inputs",
            corpus.len(),
            regressions.len()
        );
        assert!(runs > 0, "{name} ran no mutated input");
    }
}

/// Regenerates the binary seeds (WAL records, envelopes) from the JSON seeds:
/// `cargo test -p accoreboot-edge --test security_fuzz -- --ignored write_binary_seeds`.
#[test]
#[ignore]
fn write_binary_seeds() {
    use chrono::{TimeZone, Utc};
    use ingest::position::{self, Decoded, ValidationConfig};
    let received = Utc
        .timestamp_millis_opt(1_700_000_000_000)
        .single()
        .unwrap();
    let cfg = ValidationConfig {
        max_past: Duration::from_secs(100 * 365 * 86_400),
        max_future: Duration::from_secs(100 * 365 * 86_400),
        ..ValidationConfig::default()
    };
    let json = files(&fuzz_dir().join("corpus/position_decode"));
    for (i, seed) in json.iter().enumerate() {
        let Some((&pick, payload)) = seed.split_first() else {
            continue;
        };
        let topic = [
            "devices/dev-1/positions",
            "owntracks/alice/phone",
            "owntracks/alice/phone/event",
            "351756051523999/data",
        ][pick as usize % 4];
        let Decoded::Accepted { positions, rejects } =
            position::decode(topic, payload, None, received, &cfg)
        else {
            continue;
        };
        let rec = position::encode_record(&positions, &rejects);
        std::fs::write(
            fuzz_dir().join(format!("corpus/position_record/seed-{i:02}")),
            &rec,
        )
        .unwrap();
        let env = ingest::record::encode(received, &positions, &rejects);
        std::fs::write(
            fuzz_dir().join(format!("corpus/envelope/seed-{i:02}")),
            &env,
        )
        .unwrap();
        let mut seg = Vec::new();
        let mut lsn = 4096u64;
        for (seq, payload) in [&env[..], &env[..env.len() / 2]].iter().enumerate() {
            let h = ingest::wal::record::RecordHeader {
                len: payload.len() as u32,
                lsn,
                seq: seq as u64,
                appended_us: 1,
            };
            ingest::wal::record::encode(&mut seg, &h, payload);
            lsn += h.framed_len();
        }
        std::fs::write(
            fuzz_dir().join(format!("corpus/wal_record/seed-{i:02}")),
            &seg,
        )
        .unwrap();
    }
}

/// Found by the `envelope` fuzz target (ingest/fuzz/regressions/envelope/): a number among a
/// device's extra fields, `8.44444e50`, came out of the JSON parser one unit in the last place
/// off, and again after each trip through the WAL record's JSON text, so the stored value
/// drifted from what the device sent. Every float must now parse to the nearest double and
/// survive the WAL record unchanged.
#[test]
fn attribute_numbers_reach_the_wal_record_exactly() {
    use chrono::{TimeZone, Utc};
    use ingest::position::{self, Decoded, ValidationConfig};
    let received = Utc
        .timestamp_millis_opt(1_700_000_000_000)
        .single()
        .unwrap();
    let payload = br#"{"time": 1699999990000, "lat": 1, "lon": 1, "x": 8.44444e50, "y": 0.1, "z": 1.7976931348623157e308}"#;
    let Decoded::Accepted { positions, rejects } = position::decode(
        "devices/dev-1/positions",
        payload,
        None,
        received,
        &ValidationConfig::default(),
    ) else {
        panic!("the message was ignored");
    };
    assert!(rejects.is_empty(), "{rejects:?}");
    let attrs = positions[0].attributes.as_ref().unwrap();
    let expected = [("x", 8.44444e50_f64), ("y", 0.1), ("z", f64::MAX)];
    for (key, value) in expected {
        assert_eq!(attrs[key].as_f64(), Some(value), "{key} as decoded");
    }
    let mut bytes = position::encode_record(&positions, &rejects);
    for trip in 1..=3 {
        let (again, _) = position::decode_record(&bytes).unwrap();
        let attrs = again[0].attributes.as_ref().unwrap();
        for (key, value) in expected {
            assert_eq!(
                attrs[key].as_f64(),
                Some(value),
                "{key} after WAL trip {trip}"
            );
        }
        bytes = position::encode_record(&again, &[]);
    }
}
