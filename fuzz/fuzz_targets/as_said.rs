//! Fuzz target `as_said`: see `rusty_loader_fuzz::as_said` (fuzz/src/as_said.rs) and
//! docs/fuzzing.md.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    rusty_loader_fuzz::bounded(data, |data| {
        rusty_loader_fuzz::as_said::check(data);
        0
    });
});
