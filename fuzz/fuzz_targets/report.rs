//! Fuzz target `report`: see `rusty_loader_fuzz::report` (fuzz/src/report.rs) and
//! docs/fuzzing.md.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    rusty_loader_fuzz::bounded(data, rusty_loader_fuzz::report::check);
});
