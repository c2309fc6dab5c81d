//! The `fleet` binary against a real mosquitto: progress, summary, `--acked-out` file, and
//! clear errors for bad flags.

mod common;

use std::collections::HashSet;
use std::process::Command;

use common::Mosquitto;

fn fleet_cmd() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_fleet"));
    c.env("RUST_BACKTRACE", "0");
    for (k, _) in std::env::vars() {
        if k.starts_with("FLEET_") {
            c.env_remove(k);
        }
    }
    c
}

#[test]
fn runs_and_writes_every_acked_point() {
    let broker = Mosquitto::start();
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("acked.csv");
    let out = fleet_cmd()
        .args(["--host", "127.0.0.1", "--port", &broker.port.to_string()])
        .args([
            "--devices",
            "5",
            "--rate",
            "20",
            "--points-per-message",
            "2",
        ])
        .args(["--duration", "2s", "--drain", "5s"])
        .arg("--acked-out")
        .arg(&csv)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("connected 5/5"), "{stdout}");
    assert!(stdout.contains("p99"), "{stdout}");
    assert!(
        stdout.contains("unacked 0\n") || stdout.contains("unacked 0"),
        "{stdout}"
    );
    let text = std::fs::read_to_string(&csv).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("device_id,time_ms"));
    let rows: Vec<(String, i64)> = lines
        .map(|l| {
            let (d, t) = l.split_once(',').unwrap();
            (d.to_string(), t.parse().unwrap())
        })
        .collect();
    // 5 devices × 20/s × ~2 s
    assert!((150..=260).contains(&rows.len()), "{} rows", rows.len());
    let unique: HashSet<_> = rows.iter().collect();
    assert_eq!(unique.len(), rows.len());
    let devices: HashSet<_> = rows.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(devices.len(), 5);
    assert!(
        stdout.contains(&format!("acked {} (", rows.len())),
        "{stdout}"
    );
}

#[test]
fn env_variables_work_like_flags() {
    let broker = Mosquitto::start();
    let out = fleet_cmd()
        .env("FLEET_PORT", broker.port.to_string())
        .env("FLEET_DEVICES", "2")
        .env("FLEET_MAX_POINTS", "3")
        .env("FLEET_RATE", "50")
        .env("FLEET_QUIET", "true")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("2 devices"), "{stdout}");
    assert!(stdout.contains("generated 6 points, acked 6"), "{stdout}");
    assert!(!stdout.contains("t=   1s"), "quiet: {stdout}");
}

#[test]
fn bad_flags_fail_with_a_clear_message() {
    for (args, expect) in [
        (vec!["--devices", "0"], "at least 1 device"),
        (vec!["--rate", "0"], "rate per device"),
        (vec!["--rate", "-3"], "rate per device"),
        (vec!["--port", "0"], "port"),
        (vec!["--duration", "soon"], "invalid value"),
    ] {
        let out = fleet_cmd().args(&args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(stderr.contains(expect), "{args:?}: {stderr}");
    }
}

#[test]
fn unreachable_broker_fails_and_never_prints_the_password() {
    let port = common::free_port(); // nothing listens there
    let out = fleet_cmd()
        .args([
            "--port",
            &port.to_string(),
            "--devices",
            "2",
            "--rate",
            "10",
        ])
        .args([
            "--duration",
            "1s",
            "--drain",
            "300ms",
            "--password",
            "pa55-word-secret",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("no point was acknowledged"), "{stderr}");
    assert!(
        !stdout.contains("pa55") && !stderr.contains("pa55"),
        "{stdout}\n{stderr}"
    );
}
