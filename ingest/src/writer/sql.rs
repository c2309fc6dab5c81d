//! One batch transaction: binary COPY of the positions into the hypertable (falling back to
//! `INSERT … ON CONFLICT DO NOTHING` through a temporary table when the batch holds a point the
//! database already has), the latest-position upsert, the rejects, and the checkpoint — all
//! committed together, so a crash anywhere repeats the whole batch or none of it.

use futures::pin_mut;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::Transaction;

use super::batch::{Batch, Row};

/// What one committed batch wrote.
#[derive(Debug, Default, Clone, Copy)]
pub struct Written {
    /// Rows new to the hypertable (duplicates of stored points are not counted).
    pub positions: u64,
    /// Rows in the batch that the database already had (resent points).
    pub duplicates: u64,
    pub rejects: u64,
    pub latest_updated: u64,
}

const COLUMNS: &str = "device_id, time, lat, lon, alt, speed, heading, accuracy, satellites, battery, attributes, received_at";

fn column_types() -> [Type; 12] {
    [
        Type::TEXT,
        Type::TIMESTAMPTZ,
        Type::FLOAT8,
        Type::FLOAT8,
        Type::FLOAT8,
        Type::FLOAT8,
        Type::FLOAT8,
        Type::FLOAT8,
        Type::INT2,
        Type::FLOAT8,
        Type::JSONB,
        Type::TIMESTAMPTZ,
    ]
}

async fn copy_rows(
    tx: &Transaction<'_>,
    table: &str,
    batch: &Batch,
) -> Result<u64, tokio_postgres::Error> {
    let sink = tx
        .copy_in(&format!(
            "COPY {table} ({COLUMNS}) FROM STDIN (FORMAT binary)"
        ))
        .await?;
    let writer = BinaryCopyInWriter::new(sink, &column_types());
    pin_mut!(writer);
    for row in &batch.rows {
        writer.as_mut().write(&row_values(row)).await?;
    }
    writer.finish().await
}

/// One row's values, in the order of `COLUMNS` (shared by COPY and the row-by-row path).
fn row_values(row: &Row) -> [&(dyn ToSql + Sync); 12] {
    let p = &row.position;
    [
        &p.device_id,
        &p.time,
        &p.lat,
        &p.lon,
        &p.alt,
        &p.speed,
        &p.heading,
        &p.accuracy,
        &p.satellites,
        &p.battery,
        &p.attributes,
        &row.received_at,
    ]
}

/// Writes the batch and the checkpoint in the transaction (the caller commits).
pub async fn write_batch(
    tx: &Transaction<'_>,
    batch: &Batch,
    wal_id: uuid::Uuid,
) -> Result<Written, tokio_postgres::Error> {
    let mut written = Written::default();
    if !batch.rows.is_empty() {
        tx.batch_execute("SAVEPOINT copy_positions").await?;
        match copy_rows(tx, "positions", batch).await {
            Ok(n) => {
                tx.batch_execute("RELEASE SAVEPOINT copy_positions").await?;
                written.positions = n;
            }
            Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
                // Some point is already stored (a resend): take the slower path for this batch.
                tx.batch_execute(
                    "ROLLBACK TO SAVEPOINT copy_positions;
                     CREATE TEMP TABLE IF NOT EXISTS positions_incoming (LIKE positions) ON COMMIT DELETE ROWS;",
                )
                .await?;
                copy_rows(tx, "positions_incoming", batch).await?;
                written.positions = tx
                    .execute(
                        &format!("INSERT INTO positions ({COLUMNS}) SELECT {COLUMNS} FROM positions_incoming ON CONFLICT DO NOTHING"),
                        &[],
                    )
                    .await?;
            }
            Err(e) => return Err(e),
        }
        written.duplicates = batch.rows.len() as u64 - written.positions;
        written.latest_updated = upsert_latest(tx, batch).await?;
    }
    if !batch.rejects.is_empty() {
        written.rejects = insert_rejects(tx, batch, wal_id).await?;
    }
    if let Some(lsn) = batch.last_lsn {
        tx.execute(
            "INSERT INTO ingest_checkpoints (wal_id, lsn, updated_at) VALUES ($1, $2, now())
             ON CONFLICT (wal_id) DO UPDATE SET lsn = EXCLUDED.lsn, updated_at = now()",
            &[&wal_id, &(lsn as i64)],
        )
        .await?;
    }
    Ok(written)
}

/// Moves `device_latest` forward only: a late point never replaces a newer one.
async fn upsert_latest(tx: &Transaction<'_>, batch: &Batch) -> Result<u64, tokio_postgres::Error> {
    let latest = batch.latest_per_device();
    let ids: Vec<&str> = latest.iter().map(|p| p.device_id.as_str()).collect();
    let times: Vec<_> = latest.iter().map(|p| p.time).collect();
    let lats: Vec<f64> = latest.iter().map(|p| p.lat).collect();
    let lons: Vec<f64> = latest.iter().map(|p| p.lon).collect();
    let alts: Vec<Option<f64>> = latest.iter().map(|p| p.alt).collect();
    let speeds: Vec<Option<f64>> = latest.iter().map(|p| p.speed).collect();
    let headings: Vec<Option<f64>> = latest.iter().map(|p| p.heading).collect();
    let accuracies: Vec<Option<f64>> = latest.iter().map(|p| p.accuracy).collect();
    let satellites: Vec<Option<i16>> = latest.iter().map(|p| p.satellites).collect();
    let batteries: Vec<Option<f64>> = latest.iter().map(|p| p.battery).collect();
    tx.execute(
        "INSERT INTO device_latest AS l (device_id, time, lat, lon, alt, speed, heading, accuracy, satellites, battery, updated_at)
         SELECT d, t, la, lo, al, sp, he, ac, sa, ba, now()
         FROM unnest($1::text[], $2::timestamptz[], $3::float8[], $4::float8[], $5::float8[], $6::float8[],
                     $7::float8[], $8::float8[], $9::int2[], $10::float8[]) AS x(d, t, la, lo, al, sp, he, ac, sa, ba)
         ON CONFLICT (device_id) DO UPDATE SET
             time = EXCLUDED.time, lat = EXCLUDED.lat, lon = EXCLUDED.lon, alt = EXCLUDED.alt,
             speed = EXCLUDED.speed, heading = EXCLUDED.heading, accuracy = EXCLUDED.accuracy,
             satellites = EXCLUDED.satellites, battery = EXCLUDED.battery, updated_at = now()
         WHERE l.time < EXCLUDED.time",
        &[&ids, &times, &lats, &lons, &alts, &speeds, &headings, &accuracies, &satellites, &batteries],
    )
    .await
}

async fn insert_rejects(
    tx: &Transaction<'_>,
    batch: &Batch,
    wal_id: uuid::Uuid,
) -> Result<u64, tokio_postgres::Error> {
    let received: Vec<_> = batch.rejects.iter().map(|r| r.received_at).collect();
    let devices: Vec<Option<&str>> = batch
        .rejects
        .iter()
        .map(|r| r.reject.device_id.as_deref())
        .collect();
    let topics: Vec<&str> = batch
        .rejects
        .iter()
        .map(|r| r.reject.topic.as_str())
        .collect();
    let reasons: Vec<&str> = batch
        .rejects
        .iter()
        .map(|r| r.reject.reason.as_str())
        .collect();
    let details: Vec<&str> = batch
        .rejects
        .iter()
        .map(|r| r.reject.detail.as_str())
        .collect();
    let payloads: Vec<&[u8]> = batch
        .rejects
        .iter()
        .map(|r| r.reject.payload.as_ref())
        .collect();
    let lsns: Vec<i64> = batch.rejects.iter().map(|r| r.lsn as i64).collect();
    tx.execute(
        "INSERT INTO rejects (received_at, device_id, topic, reason, detail, payload, wal_id, wal_lsn)
         SELECT r, d, t, re, de, p, $7, l
         FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bytea[], $8::int8[])
              AS x(r, d, t, re, de, p, l)",
        &[&received, &devices, &topics, &reasons, &details, &payloads, &wal_id, &lsns],
    )
    .await
}

/// True for errors caused by the data of some row (not by the connection or the schema):
/// the batch is then written row by row and the rows the database refuses become rejects.
pub fn is_row_error(e: &tokio_postgres::Error) -> bool {
    match e.code() {
        Some(c) if *c == SqlState::UNIQUE_VIOLATION => false,
        Some(c) => {
            let class = &c.code()[..2];
            class == "22" || class == "23" || class == "54"
        }
        None => false,
    }
}

/// Splits a batch whose COPY failed on a row error: tries each row in its own savepoint and
/// returns the batch of rows the database takes plus a reject for each row it refuses.
pub async fn isolate_bad_rows(
    tx: &Transaction<'_>,
    batch: &Batch,
) -> Result<(Batch, Vec<(usize, String)>), tokio_postgres::Error> {
    let mut good = Batch {
        last_lsn: batch.last_lsn,
        records: batch.records,
        rejects: batch.rejects.clone(),
        ..Batch::default()
    };
    let mut bad = Vec::new();
    let insert = format!(
        "INSERT INTO positions ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT DO NOTHING"
    );
    let stmt = tx.prepare(&insert).await?;
    for (i, row) in batch.rows.iter().enumerate() {
        tx.batch_execute("SAVEPOINT one_row").await?;
        let r = tx.execute(&stmt, &row_values(row)).await;
        match r {
            Ok(_) => {
                tx.batch_execute("RELEASE SAVEPOINT one_row").await?;
                good.rows.push(row.clone());
            }
            Err(e) if is_row_error(&e) => {
                tx.batch_execute("ROLLBACK TO SAVEPOINT one_row").await?;
                let detail = e
                    .as_db_error()
                    .map(|d| d.message().to_string())
                    .unwrap_or_else(|| e.to_string());
                bad.push((i, detail));
            }
            Err(e) => return Err(e),
        }
    }
    // The caller rolls this transaction back and writes `good` through the normal path.
    Ok((good, bad))
}
