//! Fuzz target `loading`: see `rusty_loader_fuzz::loading` (fuzz/src/loading.rs) and
//! docs/fuzzing.md.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    rusty_loader_fuzz::bounded(data, |data| {
        rusty_loader_fuzz::loading::check(data);
        0
    });
});
