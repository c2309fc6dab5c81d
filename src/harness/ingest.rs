//! The real `ingest` binary as a child process: started on free loopback ports, waited for,
//! signalled (SIGTERM), killed (SIGKILL) and restarted on the same WAL directory.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// Path of the `ingest` binary built by cargo next to the test executable
/// (`cargo test --workspace` builds it).
pub fn ingest_binary() -> anyhow::Result<PathBuf> {
    if let Ok(p) = std::env::var("INGEST_BIN") {
        return Ok(PathBuf::from(p));
    }
    ensure_built()?;
    let exe = std::env::current_exe()?;
    // target/<profile>/deps/<test> -> target/<profile>/ingest
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .context("unexpected test binary location")?;
    let bin = profile_dir.join("ingest");
    if !bin.exists() {
        bail!(
            "{} not found: build it with `cargo build -p ingest` (cargo test --workspace does)",
            bin.display()
        );
    }
    Ok(bin)
}

/// `cargo test -p accoreboot-edge` does not rebuild another package's binary: build it once
/// per test process so a test never runs a stale `ingest` (a no-op when it is up to date).
fn ensure_built() -> anyhow::Result<()> {
    static BUILT: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    let result = BUILT.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "-q", "-p", "ingest", "--bin", "ingest"])
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        if !cfg!(debug_assertions) {
            cmd.arg("--release");
        }
        match cmd.status() {
            Ok(s) if s.success() => Ok(()),
            Ok(s) => Err(format!("cargo build -p ingest failed ({s})")),
            Err(e) => Err(format!("cannot run cargo to build ingest: {e}")),
        }
    });
    result.clone().map_err(|e| anyhow::anyhow!(e))
}

/// A free TCP port on 127.0.0.1 (bound then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

/// How to start the service.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    pub database_url: String,
    pub wal_dir: PathBuf,
    /// Extra `ingest run` arguments.
    pub args: Vec<String>,
    pub allow_anonymous: bool,
}

/// A running ingest process.
pub struct Ingest {
    child: Option<Child>,
    pub opts: IngestOptions,
    pub mqtt_port: u16,
    pub http_port: u16,
    pub log_path: PathBuf,
}

impl Ingest {
    /// Starts the service and waits until its MQTT port accepts connections.
    pub fn start(opts: IngestOptions) -> anyhow::Result<Ingest> {
        Self::start_on(opts, free_port(), free_port())
    }

    /// Starts it on given ports (a restart keeps the ports the clients know).
    pub fn start_on(opts: IngestOptions, mqtt_port: u16, http_port: u16) -> anyhow::Result<Ingest> {
        Self::spawn(opts, mqtt_port, http_port, None)
    }

    /// Starts it with both the soft and the hard open-files limit set to `nofile` (what a
    /// forgotten `LimitNOFILE` or compose `ulimits` leaves; the service cannot raise it).
    pub fn start_with_open_files_limit(opts: IngestOptions, nofile: u64) -> anyhow::Result<Ingest> {
        Self::spawn(opts, free_port(), free_port(), Some(nofile))
    }

    fn spawn(
        opts: IngestOptions,
        mqtt_port: u16,
        http_port: u16,
        nofile: Option<u64>,
    ) -> anyhow::Result<Ingest> {
        let bin = ingest_binary()?;
        std::fs::create_dir_all(&opts.wal_dir)?;
        let log_path = opts
            .wal_dir
            .with_extension(format!("log.{}", std::process::id()));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)?;
        let mut cmd = Command::new(bin);
        cmd.arg("run")
            .arg("--database-url")
            .arg(&opts.database_url)
            .arg("--wal-dir")
            .arg(&opts.wal_dir)
            .arg("--mqtt-listen")
            .arg(format!("127.0.0.1:{mqtt_port}"))
            .arg("--http-listen")
            .arg(format!("127.0.0.1:{http_port}"))
            .args(&opts.args)
            .env("INGEST_LOG", "info,rmqtt=warn,rmqtt_net=warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        if opts.allow_anonymous {
            cmd.arg("--allow-anonymous");
        }
        if !opts.args.iter().any(|a| a == "--wal-budget") {
            cmd.args(["--wal-budget", "256MiB"]);
        }
        if let Some(n) = nofile {
            use std::os::unix::process::CommandExt;
            // SAFETY: setrlimit is a plain system call, safe between fork and exec.
            unsafe {
                cmd.pre_exec(move || {
                    nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE, n, n)
                        .map_err(std::io::Error::from)
                });
            }
        }
        let child = cmd.spawn().context("spawning ingest")?;
        let mut me = Ingest {
            child: Some(child),
            opts,
            mqtt_port,
            http_port,
            log_path,
        };
        me.wait_port(Duration::from_secs(30))?;
        Ok(me)
    }

    fn wait_port(&mut self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut() {
                if let Some(status) = child.try_wait()? {
                    bail!("ingest exited early with {status}; log:\n{}", self.log());
                }
            }
            if std::net::TcpStream::connect(("127.0.0.1", self.mqtt_port)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!(
            "ingest did not listen on {} within {timeout:?}; log:\n{}",
            self.mqtt_port,
            self.log()
        )
    }

    /// GET a path on the HTTP port; returns (status, body).
    pub fn http_get(&self, path: &str) -> anyhow::Result<(u16, String)> {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.http_port))?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        )?;
        let mut buf = String::new();
        s.read_to_string(&mut buf)?;
        let status = buf
            .get(9..12)
            .and_then(|c| c.parse().ok())
            .context("bad HTTP answer")?;
        let body = buf
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        Ok((status, body))
    }

    /// Sum of the samples of one metric from `/metrics` whose line starts with `name` (put
    /// labels in `name` to pick one series, e.g. `ingest_db_rows_total{table="positions"}`);
    /// 0 when the endpoint does not answer.
    pub fn metric(&self, name: &str) -> f64 {
        let (_, body) = self.http_get("/metrics").unwrap_or((0, String::new()));
        body.lines()
            .filter(|l| l.starts_with(name))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// Waits until `/readyz` answers 200.
    pub fn wait_ready(&self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        let mut last = String::new();
        while Instant::now() < deadline {
            match self.http_get("/readyz") {
                Ok((200, _)) => return Ok(()),
                Ok((_, body)) => last = body,
                Err(e) => last = e.to_string(),
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        bail!("ingest not ready within {timeout:?}: {last}")
    }

    /// The process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// SIGKILL: no drain at all, like a power cut of the process.
    pub fn kill(&mut self) -> anyhow::Result<()> {
        if let Some(mut c) = self.child.take() {
            c.kill()?;
            c.wait()?;
        }
        Ok(())
    }

    /// SIGTERM and wait for the exit (up to `timeout`).
    pub fn terminate(&mut self, timeout: Duration) -> anyhow::Result<ExitStatus> {
        let mut c = self.child.take().context("not running")?;
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(c.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )?;
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(st) = c.try_wait()? {
                return Ok(st);
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                bail!(
                    "ingest did not exit within {timeout:?} after SIGTERM; log:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts again on the same ports and WAL directory.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.kill()?;
        let again = Ingest::start_on(self.opts.clone(), self.mqtt_port, self.http_port)?;
        *self = again;
        Ok(())
    }

    /// The process log so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }
}

impl Drop for Ingest {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
