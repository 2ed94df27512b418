//! Fuzz target `layout`: see `rusty_loader_fuzz::layout` (fuzz/src/layout.rs) and
//! docs/fuzzing.md.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    rusty_loader_fuzz::bounded(data, |data| {
        rusty_loader_fuzz::layout::check(data);
        0
    });
});
