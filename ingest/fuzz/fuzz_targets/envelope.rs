//! libFuzzer target `envelope`: see `targets.rs` for the property checked.
#![no_main]

#[path = "../targets.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::envelope(data));
