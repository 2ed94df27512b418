//! Fuzz target `frames`: see `rusty_loader_fuzz::frames` (fuzz/src/frames.rs) and
//! docs/fuzzing.md.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    rusty_loader_fuzz::bounded(data, rusty_loader_fuzz::frames::check);
});
