//! A fresh, empty database per test on the local PostgreSQL + TimescaleDB server.

use anyhow::Context;
use tokio_postgres::{Client, NoTls};

/// URL of the local server's main database: `DATABASE_URL`, else what `scripts/local-db` starts.
pub fn database_url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| {
        "postgres://accoreboot:accoreboot@127.0.0.1:55432/accoreboot".to_string()
    })
}

/// A database created for one test (named `t_<random>`), dropped by `drop_now()`.
pub struct TestDb {
    pub name: String,
    pub url: String,
    admin_url: String,
}

impl TestDb {
    /// Creates an empty database. Fails with a hint when the local server is not running.
    pub async fn create() -> anyhow::Result<TestDb> {
        Self::create_on(&database_url()).await
    }

    /// Creates an empty database on the server of `admin_url`.
    pub async fn create_on(admin_url: &str) -> anyhow::Result<TestDb> {
        let admin_url = admin_url.to_string();
        let (client, conn) = tokio_postgres::connect(&admin_url, NoTls).await.with_context(|| {
            "cannot reach the test database server: start it with `scripts/local-db start` (or set DATABASE_URL)"
        })?;
        tokio::spawn(conn);
        let name = format!("t_{}", uuid::Uuid::new_v4().simple());
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await?;
        let base = admin_url
            .rsplit_once('/')
            .map(|(b, _)| b)
            .unwrap_or(&admin_url);
        let url = format!("{base}/{name}");
        Ok(TestDb {
            name,
            url,
            admin_url,
        })
    }

    /// A connection to this test's database.
    pub async fn client(&self) -> anyhow::Result<Client> {
        let (client, conn) = tokio_postgres::connect(&self.url, NoTls).await?;
        tokio::spawn(conn);
        Ok(client)
    }

    /// Drops the database (terminating leftover connections).
    pub async fn drop_now(self) -> anyhow::Result<()> {
        let (client, conn) = tokio_postgres::connect(&self.admin_url, NoTls).await?;
        tokio::spawn(conn);
        client
            .batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .await?;
        Ok(())
    }

    /// Every stored (device_id, time in ms) pair, for comparison with what was acknowledged.
    pub async fn stored_points(&self) -> anyhow::Result<Vec<(String, i64)>> {
        let c = self.client().await?;
        let rows = c
            .query(
                "SELECT device_id, (extract(epoch from time) * 1000)::bigint FROM positions",
                &[],
            )
            .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }
}

/// A PostgreSQL server of a test's own (a separate cluster of the local root on another
/// port), which the test may stop and start: `scripts/local-db` with `ACCO_DB_PORT`.
pub struct OwnServer {
    pub port: u16,
}

impl OwnServer {
    fn script(&self, args: &[&str]) -> anyhow::Result<String> {
        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/local-db");
        let out = std::process::Command::new(script)
            .args(args)
            .env("ACCO_DB_PORT", self.port.to_string())
            .output()
            .context("running scripts/local-db")?;
        if !out.status.success() {
            anyhow::bail!(
                "scripts/local-db {args:?} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// Starts (creating the cluster on first use) and returns the server's admin URL.
    pub fn start(port: u16) -> anyhow::Result<(OwnServer, String)> {
        let s = OwnServer { port };
        let url = s.script(&["start"])?;
        Ok((s, url))
    }

    pub fn stop(&self) -> anyhow::Result<()> {
        self.script(&["stop"]).map(|_| ())
    }

    /// Stops like a crash of the host (no checkpoint, no clean shutdown).
    pub fn crash(&self) -> anyhow::Result<()> {
        self.script(&["stop", "--immediate"]).map(|_| ())
    }

    pub fn restart(&self) -> anyhow::Result<()> {
        self.script(&["start"]).map(|_| ())
    }
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}
