//! `deployer reboot-test local` end to end: the real ingest binary and a real TimescaleDB
//! (a private cluster of `scripts/local-db` on a free port, so that other tests using the
//! shared one are not disturbed), a simulated fleet publishing through the "reboot" (both
//! the ingest and the database restarted), and the verdict comparing every PUBACK with the
//! rows. Needs root (chroot) like scripts/local-db.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// A private copy of the local TimescaleDB (hard-linked root, its own cluster and port).
struct PrivateDb {
    dir: tempfile::TempDir,
    port: u16,
}

impl PrivateDb {
    fn start() -> Self {
        let script = repo().join("scripts/local-db");
        // Make sure the shared root exists (builds it once with debootstrap).
        let out = Command::new(&script).arg("start").output().unwrap();
        assert!(
            out.status.success(),
            "scripts/local-db start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let shared_root = std::env::var_os("ACCO_DB_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| repo().join(".local/db"))
            .join("trixie");
        let dir = tempfile::tempdir_in(repo().join(".local")).unwrap();
        let root = dir.path().join("trixie");
        let cp = Command::new("cp")
            .arg("-al")
            .arg(&shared_root)
            .arg(&root)
            .status()
            .unwrap();
        assert!(cp.success());
        std::fs::remove_dir_all(root.join("var/lib/accoreboot")).unwrap();
        let port = common::free_port();
        let db = Self { dir, port };
        let out = db.script().arg("start").output().unwrap();
        assert!(
            out.status.success(),
            "private db: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        db
    }

    fn script(&self) -> Command {
        let mut c = Command::new(repo().join("scripts/local-db"));
        c.env("ACCO_DB_DIR", self.dir.path())
            .env("ACCO_DB_PORT", self.port.to_string());
        c
    }

    fn url(&self) -> String {
        let out = self.script().arg("url").output().unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }
}

impl Drop for PrivateDb {
    fn drop(&mut self) {
        let _ = self.script().arg("destroy").output();
    }
}

#[test]
fn reboot_test_local_passes_when_nothing_is_lost() {
    let bin = common::ingest::bin();
    let db = PrivateDb::start();
    let mqtt = common::free_port();
    let http = common::free_port();
    let out = Command::new(env!("CARGO_BIN_EXE_deployer"))
        .args([
            "reboot-test",
            "local",
            "--devices",
            "4",
            "--rate",
            "5",
            "--before",
            "4",
            "--after",
            "4",
        ])
        .arg("--mqtt")
        .arg(format!("127.0.0.1:{mqtt}"))
        .arg("--http")
        .arg(format!("127.0.0.1:{http}"))
        .arg("--ingest-bin")
        .arg(&bin)
        .arg("--database-url")
        .arg(db.url())
        .env("DEPLOYER_REPO", repo())
        // The "reboot" restarts this private cluster, not the shared one.
        .env("ACCO_DB_DIR", db.dir.path())
        .env("ACCO_DB_PORT", db.port.to_string())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("PASS:") && stdout.contains(" 0 missing"),
        "{stdout}"
    );
    assert!(stderr.contains("reboot (local)"), "{stderr}");
    assert!(!stdout.contains(" 0 acknowledged"), "{stdout}");
}

#[test]
fn reboot_test_local_fails_clearly_when_the_broker_is_absent() {
    // Nothing listens on the MQTT port: the ingest binary does not exist.
    let out = Command::new(env!("CARGO_BIN_EXE_deployer"))
        .args([
            "reboot-test",
            "local",
            "--ingest-bin",
            "/nonexistent/ingest",
            "--database-url",
            "postgres://x@127.0.0.1:1/x",
        ])
        .env("DEPLOYER_REPO", repo())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("ingest"), "{stderr}");
}

#[test]
fn reboot_test_local_refuses_broken_inputs() {
    for (args, says) in [
        (&["--rate=0"][..], "--rate 0"),
        (&["--rate=-2"][..], "above 0"),
        (&["--rate=NaN"][..], "--rate NaN"),
        (&["--devices", "0"][..], "--devices must be positive"),
        (&["--how", "manual"][..], "apply to a deployed env"),
        (&["--transport", "tls"][..], "apply to a deployed env"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_deployer"))
            .args(["reboot-test", "local"])
            .args(args)
            .args(["--ingest-bin", "/nonexistent/ingest"])
            .env("DEPLOYER_REPO", repo())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
}
