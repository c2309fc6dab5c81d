//! Root package: the end-to-end tests in `tests/` and the benchmarks in `benches/`, and the
//! small harness they share: a fresh database per test on the local TimescaleDB
//! (`scripts/local-db`), and the real `ingest` binary started, signalled and killed as a
//! child process.

pub mod harness;
