//! The real ingest for the deployer's tests: its binary built from this workspace, a fresh
//! database on the local TimescaleDB (`scripts/local-db`, or `DATABASE_URL`), `ingest
//! migrate` as compose's ingest-migrate runs it, `ingest run` on free 127.0.0.1 ports with a
//! TLS certificate made by rcgen for a given host name, killed (SIGKILL) and started again on
//! the same ports and WAL where a test needs a crash.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Builds the ingest binary into this build's target dir and returns its path.
pub fn bin() -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "build",
            "-p",
            "ingest",
            "--bin",
            "ingest",
            "--message-format=short",
        ])
        .current_dir(repo())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "building ingest: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target"));
    let bin = target.join("debug/ingest");
    assert!(bin.is_file(), "no {}", bin.display());
    bin
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// The local cluster's admin URL: `DATABASE_URL`, else `scripts/local-db start` (idempotent).
fn admin_url() -> String {
    if let Ok(u) = std::env::var("DATABASE_URL") {
        return u;
    }
    let out = Command::new(repo().join("scripts/local-db"))
        .arg("start")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "scripts/local-db start: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(repo().join("scripts/local-db"))
        .arg("url")
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// SQL on a database, rows as text.
pub fn sql(url: &str, query: &str) -> Vec<Vec<String>> {
    block_on(async {
        let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|e| panic!("cannot reach the test database ({e}): run scripts/local-db start or set DATABASE_URL"));
        let handle = tokio::spawn(conn);
        let rows = client.simple_query(query).await.unwrap();
        drop(client);
        let _ = handle.await;
        rows.into_iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => Some(
                    (0..r.len())
                        .map(|i| r.get(i).unwrap_or("").to_owned())
                        .collect(),
                ),
                _ => None,
            })
            .collect()
    })
}

/// A fresh database on the local cluster, dropped with the value.
pub struct TestDb {
    admin: String,
    name: String,
    pub url: String,
}

impl TestDb {
    pub fn create() -> Self {
        let admin = admin_url();
        let name = format!("deployer_{}_{}", std::process::id(), rand::random::<u32>());
        sql(&admin, &format!("CREATE DATABASE {name}"));
        let base = admin.rsplit_once('/').unwrap().0.to_owned();
        Self {
            url: format!("{base}/{name}"),
            admin,
            name,
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let _ = std::panic::catch_unwind(|| {
            sql(
                &self.admin,
                &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
            )
        });
    }
}

/// A CA and a server certificate it signed for `names`: (CA PEM, certificate PEM, key PEM).
pub fn pki(ca_name: &str, names: &[&str]) -> (String, String, String) {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, format!("{ca_name} test CA"));
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let params =
        CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    let cert = params.signed_by(&key, &ca).unwrap();
    (ca.pem(), cert.pem(), key.serialize_pem())
}

/// `ingest <args>` against `db_url` with exactly these variables (nothing inherited).
pub fn ingest_cmd(bin: &Path, db_url: &str, args: &[&str], vars: &[(&str, &str)]) -> Output {
    let mut c = Command::new(bin);
    c.args(args)
        .env_clear()
        .env("INGEST_DATABASE_URL", db_url)
        .env("INGEST_LOG", "warn");
    for (k, v) in vars {
        c.env(k, v);
    }
    c.output().unwrap()
}

/// `ingest migrate` registering the probe device with `secret`, as compose's one-shot does.
pub fn ensure_probe(bin: &Path, db_url: &str, id: &str, secret: &str) {
    let out = ingest_cmd(
        bin,
        db_url,
        &["migrate"],
        &[
            ("INGEST_PROBE_DEVICE", id),
            ("INGEST_PROBE_DEVICE_SECRET", secret),
        ],
    );
    assert!(
        out.status.success(),
        "ingest migrate: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A running `ingest run`: plain MQTT, MQTT over TLS and HTTP on free ports; killed on drop.
pub struct Ingest {
    child: Option<Child>,
    bin: PathBuf,
    db_url: String,
    pub mqtt: u16,
    pub mqtts: u16,
    pub http: u16,
    pub dir: tempfile::TempDir,
}

impl Ingest {
    /// Starts it with `cert_pem` / `key_pem` for TLS and waits for /readyz.
    pub fn start(bin: &Path, db_url: &str, cert_pem: &str, key_pem: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("cert.pem"), cert_pem).unwrap();
        std::fs::write(dir.path().join("key.pem"), key_pem).unwrap();
        let (mqtt, mqtts, http) = (super::free_port(), super::free_port(), super::free_port());
        let mut ingest = Self {
            child: None,
            bin: bin.to_owned(),
            db_url: db_url.to_owned(),
            mqtt,
            mqtts,
            http,
            dir,
        };
        ingest.spawn();
        ingest
    }

    /// `ingest run` on this value's ports, certificate and WAL; waits for /readyz.
    pub fn spawn(&mut self) {
        let d = self.dir.path();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(d.join("ingest.log"))
            .unwrap();
        let child = Command::new(&self.bin)
            .arg("run")
            .env_clear()
            .env("INGEST_DATABASE_URL", &self.db_url)
            .env("INGEST_MQTT_LISTEN", format!("127.0.0.1:{}", self.mqtt))
            .env("INGEST_MQTTS_LISTEN", format!("127.0.0.1:{}", self.mqtts))
            .env("INGEST_TLS_CERT", d.join("cert.pem"))
            .env("INGEST_TLS_KEY", d.join("key.pem"))
            .env("INGEST_HTTP_LISTEN", format!("127.0.0.1:{}", self.http))
            .env("INGEST_WAL_DIR", d.join("wal"))
            .env("INGEST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        self.wait_ready();
    }

    /// SIGKILL, as a power cut would: no clean shutdown. The WAL stays for the next spawn.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("ingest.log")).unwrap_or_default()
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(90);
        while Instant::now() < deadline {
            let exited = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if let Some(status) = exited {
                panic!("the ingest exited ({status}):\n{}", self.log());
            }
            if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.http)) {
                let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                let _ = s.write_all(b"GET /readyz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
                let mut answer = String::new();
                let _ = s.read_to_string(&mut answer);
                if answer.starts_with("HTTP/1.1 200") || answer.starts_with("HTTP/1.0 200") {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("the ingest was not ready within 90 s:\n{}", self.log());
    }
}

impl Drop for Ingest {
    fn drop(&mut self) {
        self.kill();
    }
}
