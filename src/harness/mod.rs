//! Test and bench harness: real database, real ingest process.

mod db;
mod ingest;
pub mod verify;

pub use db::{database_url, OwnServer, TestDb};
pub use ingest::{free_port, ingest_binary, Ingest, IngestOptions};
