//! The database schema: migrations embedded in the binary, applied at start and by
//! `ingest migrate`. Idempotent, serialised across ingest nodes by an advisory lock, and safe
//! against a database that was dropped and recreated empty (everything is re-applied).
//! PowerSync's read grants are in `powersync_grant` (run by `ingest migrate --powersync-role`).

mod powersync_grant;

pub use powersync_grant::{check_role_name, grant_powersync, GrantError, Granted, PUBLICATION};

use std::time::Duration;

use thiserror::Error;
use tokio_postgres::GenericClient;
use tracing::info;

/// One embedded migration.
struct Migration {
    version: i32,
    name: &'static str,
    sql: &'static str,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "initial",
        sql: include_str!("001_initial.sql"),
    },
    Migration {
        version: 2,
        name: "powersync_publication",
        sql: include_str!("002_powersync_publication.sql"),
    },
];

/// Key of the advisory lock that serialises migrations between ingest nodes.
const MIGRATION_LOCK: i64 = 0x4143_434f_5245_4254; // "ACCOREBT"

/// Settings that shape the schema.
#[derive(Debug, Clone)]
pub struct SchemaOptions {
    /// Time span of one hypertable chunk (size it so one chunk and its indexes fit in a
    /// quarter of the database's memory).
    pub chunk_interval: Duration,
}

impl Default for SchemaOptions {
    fn default() -> Self {
        Self {
            chunk_interval: Duration::from_secs(24 * 3600),
        }
    }
}

#[derive(Debug, Error)]
pub enum SchemaError {
    #[error("chunk interval must be at least one minute, got {0:?}")]
    ChunkInterval(Duration),
    #[error("migration {version} ({name}) failed: {source}")]
    Migration {
        version: i32,
        name: &'static str,
        source: tokio_postgres::Error,
    },
    #[error("database error while migrating: {0}")]
    Db(#[from] tokio_postgres::Error),
}

/// Applies every migration the database does not have yet; returns how many ran.
pub async fn migrate(
    client: &mut tokio_postgres::Client,
    opts: &SchemaOptions,
) -> Result<usize, SchemaError> {
    if opts.chunk_interval < Duration::from_secs(60) {
        return Err(SchemaError::ChunkInterval(opts.chunk_interval));
    }
    let interval = format!("{} seconds", opts.chunk_interval.as_secs());
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version integer PRIMARY KEY,
             name text NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now())",
    )
    .await?;
    let applied: Vec<i32> = tx
        .query("SELECT version FROM schema_migrations", &[])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut ran = 0;
    for m in MIGRATIONS.iter().filter(|m| !applied.contains(&m.version)) {
        let sql = m.sql.replace("{{CHUNK_INTERVAL}}", &interval);
        tx.batch_execute(&sql)
            .await
            .map_err(|source| SchemaError::Migration {
                version: m.version,
                name: m.name,
                source,
            })?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
            &[&m.version, &m.name],
        )
        .await?;
        info!(version = m.version, name = m.name, "applied migration");
        ran += 1;
    }
    // The chunk interval is a setting: apply it on every start (it shapes new chunks only).
    tx.execute(
        "SELECT set_chunk_time_interval('positions', $1::text::interval)",
        &[&interval],
    )
    .await?;
    tx.commit().await?;
    Ok(ran)
}

/// Latest schema version this binary knows.
pub fn latest_version() -> i32 {
    MIGRATIONS.iter().map(|m| m.version).max().unwrap_or(0)
}

/// True when the error says the schema is missing (a database recreated empty).
pub fn is_missing_schema(err: &tokio_postgres::Error) -> bool {
    use tokio_postgres::error::SqlState;
    matches!(
        err.code(),
        Some(c) if *c == SqlState::UNDEFINED_TABLE || *c == SqlState::UNDEFINED_FUNCTION || *c == SqlState::UNDEFINED_OBJECT
    )
}

/// Reads the writer's checkpoint for one write-ahead log.
pub async fn read_checkpoint(
    client: &impl GenericClient,
    wal_id: uuid::Uuid,
) -> Result<Option<u64>, tokio_postgres::Error> {
    let row = client
        .query_opt(
            "SELECT lsn FROM ingest_checkpoints WHERE wal_id = $1",
            &[&wal_id],
        )
        .await?;
    Ok(row.map(|r| r.get::<_, i64>(0) as u64))
}
