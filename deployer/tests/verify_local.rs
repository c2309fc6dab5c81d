//! `deployer verify` end to end on this machine: the real `terraform` on the test-only env
//! (state in a local S3 server), a real sshd on 127.0.0.1 standing in for the instance, and
//! the real ingest (plain MQTT and MQTT over TLS with a certificate for the env's MQTT domain)
//! on the local TimescaleDB, its probe device registered by `ingest migrate` as compose's
//! ingest-migrate does at every deploy. There is no Docker engine here: the host's `docker`
//! runs the `psql` the deployer asks for directly, and `curl` reaches the ingest's HTTP port
//! (a free port instead of 8080). DNS has no record for the fixture's domains, so the HTTPS
//! checks fail and verify exits 1; the MQTT checks are what this test is about.

mod common;

use common::deployed::{write, World, OTHER_SECRET, PROBE_SECRET};
use common::ingest::ensure_probe;

/// The line of one check in verify's report.
fn line<'a>(out: &'a str, check: &str) -> &'a str {
    out.lines()
        .find(|l| l.contains(check))
        .unwrap_or_else(|| panic!("no {check:?} line in:\n{out}"))
}

#[test]
fn verify_publishes_as_the_registered_probe_over_tls_and_where_open_plain() {
    let w = World::new();

    // An env that keeps plain MQTT closed (no tfvars: the variable's default, false).
    let (code, out, err) = w.verify(&[]);
    assert_eq!(code, 1, "HTTPS cannot pass without DNS:\n{out}\n{err}");
    assert!(line(&out, "HTTPS api").starts_with("FAIL"), "{out}");
    assert!(line(&out, "ingest ready").starts_with("ok"), "{out}\n{err}");
    let tls = line(&out, "MQTT/TLS to database");
    assert!(
        tls.starts_with("ok")
            && tls.contains("3 points acknowledged")
            && tls.contains("as deployer-probe and found in the database"),
        "{out}\n{err}"
    );
    assert!(
        !out.contains("MQTT plain"),
        "plain MQTT is closed here:\n{out}"
    );
    assert_eq!(w.probe_rows(), 3);

    // The test env opens plain MQTT: verify checks it too.
    write(&w.tfvars(), "allow_plain_mqtt = true\n");
    let (code, out, err) = w.verify(&[]);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(
        line(&out, "MQTT/TLS to database").starts_with("ok"),
        "{out}\n{err}"
    );
    assert!(
        line(&out, "MQTT plain to database").starts_with("ok"),
        "{out}\n{err}"
    );
    assert_eq!(w.probe_rows(), 9);
}

#[test]
fn verify_says_what_to_do_when_the_probe_is_refused_or_misconfigured() {
    let w = World::new();
    write(&w.tfvars(), "allow_plain_mqtt = false\n");

    // The registered secret differs from the env's TEST_DEVICE_PASSWORD (e.g. the credentials
    // were edited and not deployed yet).
    ensure_probe(&w.bin, &w.db.url, "deployer-probe", OTHER_SECRET);
    let (code, out, err) = w.verify(&[]);
    assert_eq!(code, 1, "{out}\n{err}");
    let tls = line(&out, "MQTT/TLS to database");
    assert!(
        tls.starts_with("FAIL")
            && tls.contains("refused the probe device \"deployer-probe\"")
            && tls.contains("not registered or its secret differs")
            && tls.contains("run `deployer deploy <env>` again"),
        "{out}"
    );
    assert_eq!(w.probe_rows(), 0);

    // Trusting only the public web roots: the test CA's certificate is refused.
    ensure_probe(&w.bin, &w.db.url, "deployer-probe", PROBE_SECRET);
    let key = w.sshd.host_key();
    let tls_addr = format!("127.0.0.1:{}", w.ingest.mqtts);
    let (code, out, err) = w.run(&[
        "verify",
        "fixture",
        "--host-key",
        &key,
        "--mqtts-address",
        &tls_addr,
    ]);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(
        line(&out, "MQTT/TLS to database").contains("not signed by a publicly trusted CA"),
        "{out}"
    );

    // Broken inputs are usage errors, refused before any check.
    let missing = w.home.path().join("no-such-ca.pem");
    let (code, _, err) = w.run(&[
        "verify",
        "fixture",
        "--host-key",
        &key,
        "--mqtt-ca",
        missing.to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("--mqtt-ca") && err.contains("no-such-ca.pem"),
        "{err}"
    );
    write(&w.tfvars(), "allow_plain_mqtt = \"sometimes\"\n");
    let (code, _, err) = w.verify(&[]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("terraform.tfvars") && err.contains("allow_plain_mqtt must be true or false"),
        "{err}"
    );
}
