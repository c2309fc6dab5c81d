//! reboot-test on this machine: the ingest started from its binary (anonymous plain MQTT, as
//! a development broker), the local TimescaleDB (`scripts/local-db`), a simulated fleet of
//! `--devices` publishing, and the "reboot": the ingest stopped (SIGTERM) and the database
//! stopped, then both started again, the ingest's WAL kept as a disk is.

use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use anyhow::Context as _;

use super::{phase, rate, settle, DRAIN};
use crate::app::{Ctx, UsageError};
use crate::cli::RebootTestArgs;
use crate::process::Cmd;
use crate::progress::Step;
use crate::reboot_test::rows_sql;

/// Highest `--rate` per simulated device.
const MAX_DEVICE_RATE: f64 = 1000.0;

pub fn run(ctx: &mut Ctx, a: &RebootTestArgs) -> anyhow::Result<i32> {
    if a.how.is_some() || a.transport.is_some() {
        return Err(UsageError(
            "--how and --transport apply to a deployed env: `local` restarts this machine's ingest and database over plain MQTT".into(),
        )
        .into());
    }
    let devices = a.devices.unwrap_or(20);
    if devices == 0 {
        return Err(UsageError("--devices must be positive".into()).into());
    }
    let rate = rate(a.rate, 1.0, MAX_DEVICE_RATE)?;
    let mut target = LocalTarget::prepare(ctx, a)?;
    target.ready()?;

    let prefix = format!("reboot-{}-{}-", std::process::id(), unix_secs() % 100_000);
    let mut cfg = fleet::FleetConfig::new(target.mqtt_host.clone(), target.mqtt_port);
    cfg.prefix = prefix.clone();
    cfg.devices = devices as usize;
    cfg.rate_per_device = rate;
    cfg.ramp_up = Duration::from_secs(2);
    cfg.reconnect_max = Duration::from_secs(3);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let fleet = {
        let _guard = rt.enter();
        fleet::Fleet::start(cfg).context("cannot start the simulated fleet")?
    };
    let stats = fleet.stats();
    let line = || {
        let s = stats.snapshot();
        format!(
            "{} connected, {} generated, {} acked, {} resent",
            s.connected, s.generated, s.acked_points, s.resent_points
        )
    };

    phase(a.before, "before the reboot", &line);
    let acked_before = stats.acked_points() as usize;
    if acked_before == 0 {
        let last = stats.last_error().unwrap_or_default();
        let _ = rt.block_on(fleet.stop(Duration::from_secs(1)));
        anyhow::bail!(
            "no point was acknowledged before the reboot ({}:{}): {last}. Next: is the ingest listening there?",
            target.mqtt_host,
            target.mqtt_port
        );
    }
    let outage = Instant::now();
    target.restart()?;
    target.ready()?;
    println!(
        "service back after {}",
        crate::progress::format_elapsed(outage.elapsed())
    );
    phase(a.after, "after the reboot", &line);

    let step = Step::start("stop the fleet and collect the last PUBACKs");
    let report = rt.block_on(fleet.stop(DRAIN));
    step.done_with(&format!(
        "{} acked, {} never acked, {} reconnects",
        report.acked.len(),
        report.unacked.len(),
        report.reconnects
    ));
    let sql = rows_sql(&prefix);
    let verdict = settle(&report.acked, acked_before, &mut || {
        rt.block_on(target.rows(&sql))
    })?;
    target.stop_ingest();
    println!("{}", verdict.summary());
    Ok(if verdict.passed() { 0 } else { 1 })
}

fn unix_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// This machine's ingest and TimescaleDB.
struct LocalTarget {
    root: PathBuf,
    ingest_bin: PathBuf,
    database_url: String,
    mqtt_host: String,
    mqtt_port: u16,
    http: String,
    /// The ingest's WAL: kept across the restart, as a disk is across a reboot.
    wal_dir: tempfile::TempDir,
    log: PathBuf,
    child: Option<Child>,
}

fn find_ingest(root: &Path) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Some(t) = std::env::var_os("CARGO_TARGET_DIR") {
        dirs.push(PathBuf::from(t));
    }
    dirs.push(root.join("target"));
    for d in dirs {
        for profile in ["release", "debug"] {
            let p = d.join(profile).join("ingest");
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

impl LocalTarget {
    fn prepare(ctx: &Ctx, a: &RebootTestArgs) -> anyhow::Result<Self> {
        let root = ctx.project.root().to_path_buf();
        let ingest_bin = match &a.ingest_bin {
            Some(p) => p.clone(),
            None => find_ingest(&root).context(
                "no ingest binary found: run `cargo build --release -p ingest` or pass --ingest-bin",
            )?,
        };
        let database_url = match &a.database_url {
            Some(u) => u.clone(),
            None => {
                let out = Cmd::new(root.join("scripts/local-db").display().to_string())
                    .arg("url")
                    .run(&ctx.redactor)
                    .context("cannot get the local database URL: run `scripts/local-db start` or pass --database-url")?;
                out.stdout.trim().to_owned()
            }
        };
        let (mqtt_host, mqtt_port) = a
            .mqtt
            .rsplit_once(':')
            .and_then(|(h, p)| Some((h.to_owned(), p.parse().ok()?)))
            .ok_or_else(|| UsageError(format!("--mqtt {:?}: expected host:port", a.mqtt)))?;
        let wal_dir = tempfile::tempdir()?;
        let log = wal_dir.path().join("ingest.log");
        Ok(Self {
            root,
            ingest_bin,
            database_url,
            mqtt_host,
            mqtt_port,
            http: a.http.clone(),
            wal_dir,
            log,
            child: None,
        })
    }

    fn ingest(&self, sub: &str) -> std::process::Command {
        let wal = self.wal_dir.path().join("wal");
        let mut c = std::process::Command::new(&self.ingest_bin);
        c.arg(sub)
            .env("INGEST_DATABASE_URL", &self.database_url)
            .env(
                "INGEST_MQTT_LISTEN",
                format!("{}:{}", self.mqtt_host, self.mqtt_port),
            )
            .env("INGEST_HTTP_LISTEN", &self.http)
            .env("INGEST_WAL_DIR", wal)
            .env("INGEST_ALLOW_ANONYMOUS", "true")
            .env("INGEST_SHUTDOWN_DEADLINE", "20s");
        c
    }

    fn start_ingest(&mut self) -> anyhow::Result<()> {
        let out = self
            .ingest("migrate")
            .output()
            .context("cannot run `ingest migrate`")?;
        if !out.status.success() {
            anyhow::bail!(
                "`ingest migrate` failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let child = self
            .ingest("run")
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .context("cannot start `ingest run`")?;
        self.child = Some(child);
        Ok(())
    }

    /// SIGTERM (a clean shutdown, as on a reboot), SIGKILL after 30 s.
    fn stop_ingest(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn local_db(&self, action: &str) -> anyhow::Result<()> {
        Cmd::new(self.root.join("scripts/local-db").display().to_string())
            .arg(action)
            .run(&crate::redact::Redactor::new([&self.database_url]))
            .with_context(|| format!("scripts/local-db {action} failed"))?;
        Ok(())
    }

    fn ready(&mut self) -> anyhow::Result<()> {
        if self.child.is_none() {
            let step = Step::start(format!("start the ingest ({})", self.ingest_bin.display()));
            self.start_ingest()?;
            step.done();
        }
        let step = Step::start(format!("wait for http://{}/readyz", self.http));
        let url = format!("http://{}/readyz", self.http);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        for n in 1..=120 {
            step.progress(&format!("try {n}/120"));
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    let log = std::fs::read_to_string(&self.log).unwrap_or_default();
                    let tail: Vec<&str> = log.lines().rev().take(15).collect();
                    anyhow::bail!(
                        "the ingest exited ({status}); its last log lines:\n{}",
                        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                    );
                }
            }
            let ok = rt.block_on(async {
                reqwest::get(&url)
                    .await
                    .map(|r| r.status().is_success())
                    .unwrap_or(false)
            });
            if ok {
                step.done();
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        anyhow::bail!(
            "the ingest was not ready within 60 s; log: {}",
            self.log.display()
        )
    }

    fn restart(&mut self) -> anyhow::Result<()> {
        let step = Step::start("reboot (local): stop the ingest and the database");
        self.stop_ingest();
        self.local_db("stop")?;
        step.done();
        let step = Step::start("reboot (local): start the database and the ingest");
        self.local_db("start")?;
        self.start_ingest()?;
        step.done();
        Ok(())
    }

    async fn rows(&self, sql: &str) -> anyhow::Result<Vec<String>> {
        let (client, conn) = tokio_postgres::connect(&self.database_url, tokio_postgres::NoTls)
            .await
            .context("cannot connect to the local database")?;
        let handle = tokio::spawn(conn);
        let rows = client.query(sql.trim_end_matches(';'), &[]).await?;
        drop(client);
        let _ = handle.await;
        Ok(rows
            .iter()
            .map(|r| {
                format!(
                    "{},{},{}",
                    r.get::<_, String>(0),
                    r.get::<_, i64>(1),
                    r.get::<_, i64>(2)
                )
            })
            .collect())
    }
}

impl Drop for LocalTarget {
    fn drop(&mut self) {
        self.stop_ingest();
    }
}
