//! `deployer reboot-test <env>` end to end on this machine, against the deployed env of
//! `common::deployed` (real terraform + S3 state, a real sshd as the instance, the real ingest
//! over MQTT/TLS with a certificate for the env's MQTT domain, the local TimescaleDB read over
//! SSH). The probe device publishes; with `--how manual` the command waits for the reboot,
//! and when it asks for it the test kills the ingest (SIGKILL, as a power cut) and starts it
//! again on the same ports and WAL after a pause, as the instance coming back. The command
//! must reconnect, drain, find every acknowledged point in `positions` and exit 0. Broken
//! inputs (rates, options that do not apply, a closed plain port, an unreachable broker, a
//! secret the broker does not know) give clear errors, never the secret.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::process::Stdio;
use std::time::Duration;

use common::deployed::{write, World, OTHER_SECRET, PROBE_SECRET};
use common::ingest::{ensure_probe, sql};

/// `reboot-test fixture` dialling the local ingest over TLS, trusting the test CA.
fn args(w: &World, extra: &[&str]) -> Vec<String> {
    let mut a: Vec<String> = [
        "reboot-test",
        "fixture",
        "--host-key",
        &w.sshd.host_key(),
        "--mqtts-address",
        &format!("127.0.0.1:{}", w.ingest.mqtts),
        "--mqtt-ca",
        w.ca().to_str().unwrap(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

/// The numbers of the verdict line: (acknowledged, after the reboot began, found).
fn counts(summary: &str) -> (u64, u64, u64) {
    let nums: Vec<u64> = summary
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .take(3)
        .map(|s| s.parse().unwrap())
        .collect();
    (nums[0], nums[1], nums[2])
}

#[test]
fn reboot_test_finds_every_acknowledged_point_after_the_ingest_crashed() {
    let mut w = World::new();
    let mut child = w
        .std_cmd()
        .args(args(
            &w,
            &[
                "--how", "manual", "--rate", "10", "--before", "3", "--after", "4",
            ],
        ))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut s = String::new();
        stdout.read_to_string(&mut s).unwrap();
        s
    });
    let mut err = String::new();
    let mut rebooted = false;
    for line in BufReader::new(child.stderr.take().unwrap()).lines() {
        let line = line.unwrap();
        err.push_str(&line);
        err.push('\n');
        if !rebooted && line.contains("==> reboot the instance now") {
            // The instance goes down hard and comes back a few seconds later.
            w.ingest.kill();
            std::thread::sleep(Duration::from_secs(3));
            w.ingest.spawn();
            rebooted = true;
        }
    }
    let status = child.wait().unwrap();
    let out = out_reader.join().unwrap();
    // Shown with --nocapture: what the operator sees.
    eprintln!("{err}{out}");
    assert!(rebooted, "the command never asked for the reboot:\n{err}");
    assert!(
        !out.contains(PROBE_SECRET) && !err.contains(PROBE_SECRET),
        "the probe secret leaked:\n{out}\n{err}"
    );
    assert_eq!(status.code(), Some(0), "{out}\n{err}\n{}", w.ingest.log());
    let summary = out
        .lines()
        .find(|l| l.starts_with("PASS:"))
        .unwrap_or_else(|| panic!("no verdict:\n{out}"));
    assert!(
        summary.contains(" 0 missing, 0 duplicates"),
        "{summary}\n{out}"
    );
    let (acked, after, found) = counts(summary);
    assert!(acked >= 30, "{summary}");
    assert!(after > 0 && found == acked, "{summary}");
    assert!(out.contains("service back after"), "{out}");
    assert!(
        err.contains("log in as deployer-probe on 127.0.0.1:") && err.contains("(MQTT/TLS)"),
        "{err}"
    );
    // The run's points are in the database, once each, marked as the reboot test's.
    let rows = sql(
        &w.db.url,
        "SELECT count(*), count(DISTINCT time) FROM positions \
         WHERE device_id = 'deployer-probe' AND attributes->>'probe' = 'deployer reboot-test'",
    );
    let stored: u64 = rows[0][0].parse().unwrap();
    assert_eq!(rows[0][0], rows[0][1], "duplicates in positions");
    assert!(
        stored >= acked,
        "{stored} rows for {acked} acknowledged points"
    );
}

#[test]
fn reboot_test_refuses_broken_inputs_clearly() {
    let w = World::new();
    let run = |extra: &[&str]| {
        let a = args(&w, extra);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        w.run(&a)
    };
    // Mistakes on the command line: usage errors (exit 2), before anything is reached.
    for rate in ["0", "-1", "NaN", "21"] {
        let (code, _, err) = run(&[&format!("--rate={rate}")]);
        assert_eq!(code, 2, "--rate {rate}: {err}");
        assert!(
            err.contains("--rate") && err.contains("at most 20"),
            "{err}"
        );
    }
    let (code, _, err) = run(&["--rate", "fast"]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = run(&["--devices", "5"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("--devices applies to `local`") && err.contains("deployer-probe"),
        "{err}"
    );
    let (code, _, err) = run(&["--how", "kick"]);
    assert_eq!(code, 2, "{err}");
    // The env keeps plain MQTT closed (no tfvars: the default).
    let (code, _, err) = run(&["--transport", "plain"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("keeps plain MQTT (1883) closed") && err.contains("--transport tls"),
        "{err}"
    );
    let missing = w.home.path().join("no-such-ca.pem");
    let key = w.sshd.host_key();
    let (code, _, err) = w.run(&[
        "reboot-test",
        "fixture",
        "--host-key",
        &key,
        "--mqtt-ca",
        missing.to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no-such-ca.pem"), "{err}");

    // Nothing answers where the broker should be: the run stops before the reboot.
    let absent = format!("127.0.0.1:{}", common::free_port());
    let ca = w.ca();
    let (code, _, err) = w.run(&[
        "reboot-test",
        "fixture",
        "--host-key",
        &key,
        "--mqtt-ca",
        ca.to_str().unwrap(),
        "--mqtts-address",
        &absent,
        "--before",
        "1",
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("the probe cannot publish before the reboot")
            && err.contains(&format!("cannot connect to {absent}")),
        "{err}"
    );
    assert!(!err.contains("reboot the instance now"), "{err}");

    // The broker knows another secret for the probe device (credentials edited, not
    // deployed).
    ensure_probe(&w.bin, &w.db.url, "deployer-probe", OTHER_SECRET);
    let (code, _, err) = run(&["--before", "1"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("not registered or its secret differs")
            && err.contains("deployer deploy <env>"),
        "{err}"
    );
    // Where the env opens plain MQTT, the probe may use it; the address then defaults to
    // port 1883 of the MQTT domain, which does not resolve here.
    write(&w.tfvars(), "allow_plain_mqtt = true\n");
    ensure_probe(&w.bin, &w.db.url, "deployer-probe", PROBE_SECRET);
    let a = args(&w, &["--transport", "plain", "--before", "1"]);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let (code, _, err) = w.run(&a);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("(plain MQTT)")
            && err.contains("cannot connect to mqtt.fixture.example.test:1883"),
        "{err}"
    );
}
