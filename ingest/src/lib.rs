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
//! Prometheus endpoints), `metrics` (metric names), `db` (the connection pool, TLS).

pub mod auth;
pub mod broker;
pub mod config;
pub mod db;
pub mod device_cli;
pub mod health;
pub mod http;
pub mod metrics;
pub mod position;
pub mod record;
pub mod schema;
pub mod service;
pub mod shutdown;
pub mod wal;
pub mod writer;
