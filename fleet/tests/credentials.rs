//! Devices log in to a mosquitto that requires a password: the right one works, a wrong one
//! is refused (and keeps being retried), and the password never appears in errors.

mod common;

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::Mosquitto;
use fleet::{Credentials, Fleet, FleetConfig};

fn broker_with_users(users: &[(&str, &str)]) -> (Mosquitto, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let pwfile = dir.path().join("passwd");
    for (i, (u, p)) in users.iter().enumerate() {
        let mut cmd = Command::new("mosquitto_passwd");
        if i == 0 {
            cmd.arg("-c");
        }
        let st = cmd
            .arg("-b")
            .arg(&pwfile)
            .arg(u)
            .arg(p)
            .status()
            .expect("mosquitto_passwd missing: apt-get install -y mosquitto");
        assert!(st.success());
    }
    let broker = Mosquitto::start_with(&format!(
        "allow_anonymous false\npassword_file {}\n",
        pwfile.display()
    ));
    (broker, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_and_per_device_passwords() {
    let (broker, _pw) = broker_with_users(&[
        ("sim-000000", "s3cret-shared"),
        ("sim-000001", "s3cret-shared"),
        ("user-of-sim-000002", "pw-2"),
    ]);

    let mut cfg = FleetConfig::new("127.0.0.1", broker.port);
    cfg.devices = 2;
    cfg.rate_per_device = 50.0;
    cfg.max_points = Some(10);
    cfg.credentials = Credentials::SharedPassword("s3cret-shared".into());
    let f = Fleet::start(cfg).unwrap();
    f.wait_all_acked(Duration::from_secs(20)).await.unwrap();
    assert_eq!(f.stop(Duration::from_secs(5)).await.acked.len(), 20);

    let mut cfg = FleetConfig::new("127.0.0.1", broker.port);
    cfg.first_index = 2;
    cfg.rate_per_device = 50.0;
    cfg.max_points = Some(10);
    cfg.credentials = Credentials::PerDevice(Arc::new(|id: &str| {
        (format!("user-of-{id}"), "pw-2".to_string())
    }));
    let f = Fleet::start(cfg).unwrap();
    f.wait_all_acked(Duration::from_secs(20)).await.unwrap();
    assert_eq!(f.stop(Duration::from_secs(5)).await.acked.len(), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_is_refused_and_not_leaked() {
    let (broker, _pw) = broker_with_users(&[("sim-000000", "right-password")]);
    let mut cfg = FleetConfig::new("127.0.0.1", broker.port);
    cfg.rate_per_device = 10.0;
    cfg.max_points = Some(5);
    cfg.reconnect_min = Duration::from_millis(50);
    cfg.reconnect_max = Duration::from_millis(100);
    cfg.credentials = Credentials::SharedPassword("wrong-password-xyz".into());
    let f = Fleet::start(cfg).unwrap();
    let err = f.wait_all_acked(Duration::from_secs(2)).await.unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("0 of 5"), "{msg}");
    assert!(!msg.contains("wrong-password-xyz"), "{msg}");
    let stats = f.stats();
    let s = stats.snapshot();
    assert_eq!(s.connected, 0);
    assert!(s.errors >= 3, "kept retrying: {s:?}");
    let last = stats.last_error().unwrap();
    assert!(last.contains("sim-000000"), "{last}");
    assert!(!last.contains("wrong-password"), "{last}");
    let report = f.stop(Duration::from_millis(200)).await;
    assert!(report.acked.is_empty());
    assert_eq!(report.unacked.len(), 5);
}
