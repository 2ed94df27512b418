//! Fuzz target `cmdline`: see `rusty_loader_fuzz::cmdline` (fuzz/src/cmdline.rs) and
//! docs/fuzzing.md.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    rusty_loader_fuzz::bounded(data, |data| {
        rusty_loader_fuzz::cmdline::check(data);
        0
    });
});
