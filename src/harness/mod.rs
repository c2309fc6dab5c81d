//! Test and bench harness: real database, real ingest process.

mod db;
mod ingest;
pub mod mqtt_wire;
pub mod verify;

pub use db::{database_url, OwnServer, TestDb};
pub use ingest::{free_port, ingest_binary, Ingest, IngestOptions};

/// A bench or demo setting from the environment, or its default when unset or unparsable.
pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
