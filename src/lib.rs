//! Root package: owns the end-to-end tests in `tests/` and the benchmarks in `benches/`.
