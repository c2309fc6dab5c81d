//! The database writer: reads the WAL in order, batches records (size and time triggers),
//! writes each batch in one transaction with its checkpoint (see `sql`), then releases the WAL
//! segments the database now holds. It never gives up on a batch: a database that is down,
//! restarting, or recreated empty is retried with backoff (re-migrating an empty one), while
//! devices keep being acknowledged from the WAL.

mod batch;
mod sql;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use deadpool_postgres::Pool;
use tracing::{debug, error, info, warn};

pub use batch::{Batch, RejectRow, Row};
pub use sql::Written;

use crate::health::Health;
use crate::metrics as m;
use crate::position::{Reject, RejectReason};
use crate::schema::{self, SchemaOptions};
use crate::shutdown::Shutdown;
use crate::wal::{Lsn, Wal, WalReader};

/// Batching and retry settings.
#[derive(Debug, Clone)]
pub struct WriterOptions {
    /// A batch is written once it holds this many positions…
    pub batch_max_rows: usize,
    /// …or once this much time passed since its first record.
    pub batch_linger: Duration,
    /// Shape of the schema applied on connect.
    pub schema: SchemaOptions,
    /// Longest pause between two attempts while the database is unreachable.
    pub max_backoff: Duration,
}

impl Default for WriterOptions {
    fn default() -> Self {
        Self {
            batch_max_rows: 20_000,
            batch_linger: Duration::from_millis(200),
            schema: SchemaOptions::default(),
            max_backoff: Duration::from_secs(5),
        }
    }
}

/// The writer task's state.
pub struct Writer {
    wal: Wal,
    pool: Pool,
    opts: WriterOptions,
    health: Arc<Health>,
}

/// Why a batch attempt failed.
enum Attempt {
    /// The database is not there, or the schema is missing: retry after backoff.
    Retry(String),
}

impl Writer {
    pub fn new(wal: Wal, pool: Pool, opts: WriterOptions, health: Arc<Health>) -> Self {
        Self {
            wal,
            pool,
            opts,
            health,
        }
    }

    /// Runs until `shutdown` and then until the WAL is drained into the database or
    /// `stop_now` fires (the drain deadline); what is left stays in the WAL for the next start.
    pub async fn run(self, shutdown: Shutdown, stop_now: Shutdown) {
        let Some(checkpoint) = self.start(&shutdown).await else {
            return;
        };
        info!(wal_id = %self.wal.id(), checkpoint = ?checkpoint, "writer started");
        // The WAL does not persist what was released: tell it again what the database holds,
        // so the backlog (and the budget) counts only what is really unwritten.
        if let Some(lsn) = checkpoint {
            if let Err(e) = self.wal.release(lsn) {
                warn!(error = %e, "could not release the WAL up to the database checkpoint");
            }
        }
        let mut reader = self.wal.reader(checkpoint);
        loop {
            if stop_now.is_triggered() {
                break;
            }
            let batch = match self.collect(&mut reader, &shutdown).await {
                Ok(b) => b,
                // The WAL was closed (the drain) and every record in it was read: done.
                Err(crate::wal::WalError::Closed) => {
                    info!("writer drained the WAL");
                    break;
                }
                Err(e) => {
                    error!(error = %e, "reading the WAL failed; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            };
            if batch.is_empty() {
                if shutdown.is_triggered() {
                    info!("writer drained the WAL");
                    break;
                }
                continue;
            }
            if !self.commit_with_retry(&batch, &shutdown, &stop_now).await {
                warn!("stopping before the WAL was drained; the rest stays in the WAL for the next start");
                break;
            }
        }
    }

    /// Connects, migrates and reads the checkpoint, retrying until the database answers
    /// (or the drain starts: with no database there is nothing to flush).
    async fn start(&self, shutdown: &Shutdown) -> Option<Option<Lsn>> {
        let mut backoff = Backoff::new(self.opts.max_backoff);
        loop {
            match self.connect_and_checkpoint().await {
                Ok(cp) => {
                    self.health.db_ok();
                    metrics::gauge!(m::DB_UP).set(1.0);
                    return Some(cp);
                }
                Err(e) => {
                    self.db_down(&e);
                    tokio::select! {
                        _ = backoff.wait() => {}
                        _ = shutdown.wait() => return None,
                    }
                }
            }
        }
    }

    async fn connect_and_checkpoint(&self) -> Result<Option<Lsn>, String> {
        let mut client = self.pool.get().await.map_err(|e| format!("connect: {e}"))?;
        schema::migrate(&mut client, &self.opts.schema)
            .await
            .map_err(|e| e.to_string())?;
        schema::read_checkpoint(&**client, self.wal.id())
            .await
            .map_err(|e| e.to_string())
    }

    fn db_down(&self, error: &str) {
        warn!(error, "database unavailable; positions stay in the WAL");
        self.health.db_failed(error.to_string());
        metrics::gauge!(m::DB_UP).set(0.0);
        metrics::counter!(m::DB_ERRORS, "kind" => "unavailable").increment(1);
    }

    /// Reads records until the batch is full or the linger time passed.
    async fn collect(
        &self,
        reader: &mut WalReader,
        shutdown: &Shutdown,
    ) -> Result<Batch, crate::wal::WalError> {
        let mut batch = Batch::default();
        let idle_poll = if shutdown.is_triggered() {
            Duration::from_millis(50)
        } else {
            Duration::from_millis(500)
        };
        let mut deadline: Option<Instant> = None;
        while batch.rows.len() < self.opts.batch_max_rows {
            let wait = match deadline {
                None => idle_poll,
                Some(d) => d.saturating_duration_since(Instant::now()),
            };
            if deadline.is_some() && wait.is_zero() {
                break;
            }
            let room = (self.opts.batch_max_rows - batch.rows.len()).max(1);
            let records = match tokio::time::timeout(wait, reader.next_batch(room.min(4096))).await
            {
                Ok(Ok(r)) => r,
                // Closed after the last record: write what this batch holds first; the next
                // call reports the end.
                Ok(Err(crate::wal::WalError::Closed)) if !batch.is_empty() => break,
                Ok(Err(e)) => return Err(e),
                Err(_) => break,
            };
            if records.is_empty() {
                if deadline.is_none() {
                    break;
                }
                continue;
            }
            deadline.get_or_insert_with(|| Instant::now() + self.opts.batch_linger);
            for (lsn, bytes) in records {
                push_record(&mut batch, lsn, bytes);
            }
        }
        Ok(batch)
    }

    /// Writes one batch, retrying until it is committed. Returns false when `stop_now` fired,
    /// or when an attempt failed during the drain (the database is not there: flushing can wait
    /// for the next start, the records are safe in the WAL).
    async fn commit_with_retry(
        &self,
        batch: &Batch,
        shutdown: &Shutdown,
        stop_now: &Shutdown,
    ) -> bool {
        let mut backoff = Backoff::new(self.opts.max_backoff);
        loop {
            let started = Instant::now();
            match self.commit(batch).await {
                Ok(w) => {
                    metrics::histogram!(m::DB_COMMIT_LATENCY)
                        .record(started.elapsed().as_secs_f64());
                    metrics::counter!(m::DB_BATCHES).increment(1);
                    metrics::counter!(m::DB_ROWS, "table" => "positions").increment(w.positions);
                    metrics::counter!(m::DB_ROWS, "table" => "rejects").increment(w.rejects);
                    metrics::counter!(m::DB_ROWS, "table" => "duplicates_skipped")
                        .increment(w.duplicates);
                    metrics::gauge!(m::DB_UP).set(1.0);
                    self.health.db_ok();
                    self.health.committed();
                    debug!(
                        records = batch.records,
                        positions = w.positions,
                        duplicates = w.duplicates,
                        "batch committed"
                    );
                    if let Some(lsn) = batch.last_lsn {
                        if let Err(e) = self.wal.release(lsn) {
                            warn!(error = %e, "could not delete written WAL segments; will retry after the next batch");
                        }
                    }
                    return true;
                }
                Err(Attempt::Retry(e)) => {
                    self.db_down(&e);
                    if shutdown.is_triggered() {
                        return false;
                    }
                    tokio::select! {
                        _ = backoff.wait() => {}
                        _ = stop_now.wait() => return false,
                        _ = shutdown.wait() => return false,
                    }
                }
            }
        }
    }

    async fn commit(&self, batch: &Batch) -> Result<Written, Attempt> {
        let mut client = self
            .pool
            .get()
            .await
            .map_err(|e| Attempt::Retry(format!("connect: {e}")))?;
        let result = async {
            let tx = client.transaction().await?;
            let w = sql::write_batch(&tx, batch, self.wal.id()).await?;
            tx.commit().await?;
            Ok::<_, tokio_postgres::Error>(w)
        }
        .await;
        let result = match result {
            Err(e) if sql::is_row_error(&e) => {
                warn!(error = %describe_db_error(&e), "the database refused a row: finding it, the rest of the batch goes on");
                metrics::counter!(m::DB_ERRORS, "kind" => "row_refused").increment(1);
                async {
                    let tx = client.transaction().await?;
                    let (good, bad) = sql::isolate_bad_rows(&tx, batch).await?;
                    tx.rollback().await?;
                    let good = with_refused_rows(good, batch, bad);
                    let tx = client.transaction().await?;
                    let w = sql::write_batch(&tx, &good, self.wal.id()).await?;
                    tx.commit().await?;
                    Ok::<_, tokio_postgres::Error>(w)
                }
                .await
            }
            other => other,
        };
        match result {
            Ok(w) => Ok(w),
            Err(e) => {
                // A statement that failed at the start of a COPY can leave the connection out
                // of step with the server: never hand it back to the pool.
                let _ = deadpool_postgres::Object::take(client);
                if schema::is_missing_schema(&e) {
                    warn!(error = %describe_db_error(&e), "schema missing (database recreated?): migrating before the catch-up");
                    let mut fresh = self
                        .pool
                        .get()
                        .await
                        .map_err(|e| Attempt::Retry(format!("connect: {e}")))?;
                    if let Err(me) = schema::migrate(&mut fresh, &self.opts.schema).await {
                        return Err(Attempt::Retry(format!("migrate: {me}")));
                    }
                    return Err(Attempt::Retry("schema was missing; migrated".into()));
                }
                Err(Attempt::Retry(describe_db_error(&e)))
            }
        }
    }
}

/// Decodes one WAL record into the batch; an undecodable record becomes a reject.
fn push_record(batch: &mut Batch, lsn: Lsn, bytes: Bytes) {
    match crate::record::decode(&bytes) {
        Ok(env) => batch.push(lsn, env),
        Err(e) => {
            error!(lsn, error = %e, "undecodable WAL record kept as a reject");
            metrics::counter!(m::REJECTS, "reason" => RejectReason::CorruptRecord.as_str())
                .increment(1);
            batch.push_undecodable(
                lsn,
                Reject {
                    device_id: None,
                    topic: String::new(),
                    reason: RejectReason::CorruptRecord,
                    detail: e.to_string(),
                    payload: bytes,
                },
            );
        }
    }
}

/// Adds a reject (reason `database_rejected`) for each row the database refused.
fn with_refused_rows(mut good: Batch, batch: &Batch, bad: Vec<(usize, String)>) -> Batch {
    let lsn = batch.last_lsn.unwrap_or_default();
    for (i, detail) in bad {
        let Some(row) = batch.rows.get(i) else {
            continue;
        };
        let p = &row.position;
        error!(device = %p.device_id, time = %p.time, detail, "position refused by the database; kept in rejects");
        metrics::counter!(m::REJECTS, "reason" => RejectReason::DatabaseRejected.as_str())
            .increment(1);
        let payload = serde_json::json!({
            "device_id": p.device_id, "time": p.time.to_rfc3339(), "lat": p.lat, "lon": p.lon, "alt": p.alt,
            "speed": p.speed, "heading": p.heading, "accuracy": p.accuracy, "satellites": p.satellites,
            "battery": p.battery, "attributes": p.attributes,
        });
        good.rejects.push(RejectRow {
            reject: Reject {
                device_id: Some(p.device_id.clone()),
                topic: String::new(),
                reason: RejectReason::DatabaseRejected,
                detail,
                payload: Bytes::from(payload.to_string()),
            },
            received_at: row.received_at,
            lsn,
        });
    }
    good
}

fn describe_db_error(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => e.to_string(),
    }
}

/// Exponential backoff from 100 ms up to a cap.
struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    fn new(max: Duration) -> Self {
        Self {
            next: Duration::from_millis(100),
            max,
        }
    }
    async fn wait(&mut self) {
        tokio::time::sleep(self.next).await;
        self.next = (self.next * 2).min(self.max);
    }
}
