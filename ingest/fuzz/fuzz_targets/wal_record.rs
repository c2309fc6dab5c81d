//! libFuzzer target `wal_record`: see `targets.rs` for the property checked.
#![no_main]

#[path = "../targets.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::wal_record(data));
