//! Fuzz target `stream`: see `rusty_loader_fuzz::stream` (fuzz/src/stream.rs) and
//! docs/fuzzing.md.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    rusty_loader_fuzz::bounded(data, rusty_loader_fuzz::stream::check);
});
