//! The SSH layer against a real OpenSSH server on 127.0.0.1 (see common/sshd.rs): wait loops
//! (success, server coming up late, unreachable with a clear error), the cloud-init marker,
//! files written with their mode, binary-safe streaming, pinned host keys.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use common::sshd::Sshd;
use deployer::progress::Step;
use deployer::redact::Redactor;
use deployer::remote::known_hosts;
use deployer::remote::wait::{wait_for_marker, wait_for_ssh, WaitError};
use deployer::remote::{SshError, SshTarget, WaitPolicy};

fn target(sshd: &Sshd) -> SshTarget {
    SshTarget {
        user: "root".into(),
        host: "127.0.0.1".into(),
        port: sshd.port,
        identity: Some(sshd.identity()),
        known_hosts: sshd.known_hosts(),
        connect_timeout: 3,
    }
}

fn fast(tries: u32) -> WaitPolicy {
    WaitPolicy {
        tries,
        interval: Duration::from_millis(300),
    }
}

#[test]
fn waits_then_runs_commands_and_writes_files() {
    let sshd = Sshd::prepare().start();
    let t = target(&sshd);
    let r = Redactor::new(["s3cret-db-password"]);
    let step = Step::start("wait for ssh");
    wait_for_ssh(&t, fast(5), &step, &r).unwrap();
    step.done();

    // The marker appears after a few tries.
    let marker = sshd.path().join("boot-finished-docker");
    let m = marker.clone();
    let writer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(800));
        std::fs::write(m, "").unwrap();
    });
    let step = Step::start("wait for marker");
    wait_for_marker(&t, marker.to_str().unwrap(), fast(20), &step, &r).unwrap();
    step.done();
    writer.join().unwrap();

    // Files land with their mode, parents created, content exact.
    let env_path = sshd.remote_dir().join("deep/.env");
    t.write_file(env_path.to_str().unwrap(), b"DATABASE_URL='x'\n", 0o600, &r)
        .unwrap();
    let meta = std::fs::metadata(&env_path).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert_eq!(
        std::fs::read_to_string(&env_path).unwrap(),
        "DATABASE_URL='x'\n"
    );
    assert_eq!(
        t.read_file(env_path.to_str().unwrap(), &r)
            .unwrap()
            .as_deref(),
        Some("DATABASE_URL='x'\n")
    );
    assert_eq!(t.read_file("/nonexistent/file", &r).unwrap(), None);

    // Remote failures carry the output, masked.
    let err = t
        .run("echo 'auth failed for s3cret-db-password' >&2; exit 7", &r)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("exit code 7") && err.contains("auth failed for ***"),
        "{err}"
    );
    assert!(!err.contains("s3cret"), "{err}");

    // Binary-safe streaming both ways (database dumps).
    let data: Vec<u8> = (0..=255u8).cycle().take(300_000).collect();
    let src = sshd.path().join("in.bin");
    let dst = sshd.path().join("out.bin");
    std::fs::write(&src, &data).unwrap();
    t.run_files("cat", Some(&src), Some(&dst), &r).unwrap();
    assert_eq!(std::fs::read(&dst).unwrap(), data);
}

#[test]
fn unreachable_host_ends_the_wait_with_a_clear_error() {
    let sshd = Sshd::prepare(); // never started: nothing listens on the port
    let t = target(&sshd);
    let step = Step::start("wait for ssh (nobody there)");
    let err = wait_for_ssh(&t, fast(3), &step, &Redactor::default()).unwrap_err();
    drop(step);
    assert!(
        matches!(err, WaitError::SshTimeout { tries: 3, .. }),
        "{err}"
    );
    let msg = err.to_string();
    assert!(msg.contains("after 3 tries"), "{msg}");
    assert!(msg.contains("Next:"), "{msg}");
}

#[test]
fn server_starting_late_is_waited_for() {
    let mut sshd = Sshd::prepare();
    let t = target(&sshd);
    let step = Step::start("wait for a late sshd");
    std::thread::scope(|s| {
        let waiter = s.spawn(|| wait_for_ssh(&t, fast(40), &step, &Redactor::default()));
        std::thread::sleep(Duration::from_millis(1500));
        sshd.spawn();
        waiter.join().unwrap().unwrap();
    });
    step.done();
}

#[test]
fn marker_that_never_appears_times_out() {
    let sshd = Sshd::prepare().start();
    let t = target(&sshd);
    let step = Step::start("marker never written");
    let err = wait_for_marker(
        &t,
        "/nonexistent/marker",
        fast(2),
        &step,
        &Redactor::default(),
    )
    .unwrap_err()
    .to_string();
    drop(step);
    assert!(
        err.contains("/nonexistent/marker") && err.contains("cloud-init-output.log"),
        "{err}"
    );
}

#[test]
fn a_different_host_key_is_refused_at_once() {
    let sshd = Sshd::prepare().start();
    let mut t = target(&sshd);
    // Pin some other key for this host.
    let other = tempfile::tempdir().unwrap();
    let kh = other.path().join("known_hosts.test");
    let out = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(other.path().join("k"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let key = std::fs::read_to_string(other.path().join("k.pub")).unwrap();
    known_hosts::pin(&kh, "127.0.0.1", sshd.port, &[key]).unwrap();
    t.known_hosts = kh.clone();
    let step = Step::start("wrong host key");
    let err = wait_for_ssh(&t, fast(10), &step, &Redactor::default()).unwrap_err();
    drop(step);
    assert!(
        matches!(err, WaitError::Ssh(SshError::HostKeyMismatch { .. })),
        "{err}"
    );
    // Unknown host (empty known_hosts) is refused too: no blind trust on first contact.
    t.known_hosts = other.path().join("empty");
    std::fs::write(&t.known_hosts, "").unwrap();
    assert!(t.run("true", &Redactor::default()).is_err());
    // Pinning the server's real key makes it work.
    known_hosts::pin(&t.known_hosts, "127.0.0.1", sshd.port, &[sshd.host_key()]).unwrap();
    t.run("true", &Redactor::default()).unwrap();
}
