//! A fresh, empty database per test on the local PostgreSQL + TimescaleDB server.

use anyhow::Context;
use tokio_postgres::{Client, NoTls};

/// URL of the local server's main database: `DATABASE_URL`, else what `scripts/local-db` starts.
pub fn database_url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| "postgres://accoreboot:accoreboot@127.0.0.1:55432/accoreboot".to_string())
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
        let admin_url = database_url();
        let (client, conn) = tokio_postgres::connect(&admin_url, NoTls).await.with_context(|| {
            "cannot reach the test database server: start it with `scripts/local-db start` (or set DATABASE_URL)"
        })?;
        tokio::spawn(conn);
        let name = format!("t_{}", uuid::Uuid::new_v4().simple());
        client.batch_execute(&format!("CREATE DATABASE {name}")).await?;
        let base = admin_url.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin_url);
        let url = format!("{base}/{name}");
        Ok(TestDb { name, url, admin_url })
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
        client.batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)).await?;
        Ok(())
    }

    /// Every stored (device_id, time in ms) pair, for comparison with what was acknowledged.
    pub async fn stored_points(&self) -> anyhow::Result<Vec<(String, i64)>> {
        let c = self.client().await?;
        let rows = c
            .query("SELECT device_id, (extract(epoch from time) * 1000)::bigint FROM positions", &[])
            .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }
}
