//! # ingest: GPS positions from MQTT trackers into TimescaleDB, acknowledged only once durable
//!
//! Data flows one way through these modules:
//!
//! ```text
//!  trackers ──MQTT──▶ broker (rmqtt, embedded)
//!                       │ publish hook (broker::publish)
//!                       ▼
//!                     position (decode + validate) ──▶ record (WAL envelope)
//!                       ▼
//!                     wal (append, group fsync) ──▶ PUBACK to the device
//!                       ▼
//!                     writer (batch, binary COPY, checkpoint in the same transaction)
//!                       ▼
//!                     TimescaleDB: positions (hypertable), device_latest, rejects   ◀── schema
//! ```
//!
//! Around them: `config` (CLI and `INGEST_*` environment), `service` (wiring and the drain on
//! SIGTERM), `shutdown` (the drain signal), `health` (what `/readyz` says), `http` (health and
//! Prometheus endpoints), `metrics` (metric names), `db` (the connection pool, TLS),
//! `log_throttle` (one line per interval on hot error paths).
//!
//! Everything but `position`, `record`, `wal`, `log_throttle` and `topic_rules` (the ACL's pure topic rules)
//! needs the default feature `server`; without it the crate is the pure core the fuzz targets
//! build (ingest/fuzz).

#[cfg(feature = "server")]
pub mod auth;
#[cfg(feature = "server")]
pub mod broker;
#[cfg(feature = "server")]
pub mod config;
#[cfg(feature = "server")]
pub mod db;
#[cfg(feature = "server")]
pub mod device_cli;
#[cfg(feature = "server")]
pub mod health;
#[cfg(feature = "server")]
pub mod http;
pub mod log_throttle;
#[cfg(feature = "server")]
pub mod metrics;
pub mod position;
pub mod record;
#[cfg(feature = "server")]
pub mod schema;
#[cfg(feature = "server")]
pub mod service;
#[cfg(feature = "server")]
pub mod shutdown;
pub mod topic_rules;
pub mod wal;
#[cfg(feature = "server")]
pub mod writer;
