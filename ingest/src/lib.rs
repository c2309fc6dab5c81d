//! # ingest: GPS positions from MQTT trackers into TimescaleDB, acknowledged only once durable
//!
//! Data flows one way through these modules:
//!
//! ```text
//! broker (rmqtt hooks) ─▶ position (decode + validate) ─▶ wal (append, group fsync) ─▶ PUBACK
//!                                                         wal ─▶ writer (batch, binary COPY) ─▶ TimescaleDB
//! http: /healthz /readyz /metrics          schema: embedded migrations
//! ```

pub mod position;
pub mod wal;
