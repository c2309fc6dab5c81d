//! Test and bench harness: real database, real ingest process.

mod db;
mod ingest;

pub use db::{database_url, TestDb};
pub use ingest::{free_port, ingest_binary, Ingest, IngestOptions};
