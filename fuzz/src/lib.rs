//! The checks behind the fuzz targets (`fuzz_targets/`), one module per target, and
//! what they share. Each target's `check` takes the raw fuzz input, runs the
//! project's code on it and panics when an invariant fails.
//!
//! Each `check` returns how many events and regions the input made the code handle
//! (0 for the loader's targets), which the time bound grows with ([`bounded`]).
//!
//! These modules use only the project's crates and their dependencies, no fuzzing
//! crate: the stable regression tests (`loader/tests/regressions.rs`,
//! `trace-decoder/tests/regressions.rs`) include them by path and replay every file
//! of `fuzz/regressions/<target>/` through the same `check`.

pub mod as_said;
pub mod cmdline;
pub mod decoding;
pub mod fdt_reader;
pub mod frames;
pub mod input;
pub mod layout;
pub mod loading;
pub mod report;
pub mod stream;

use std::time::{Duration, Instant};

/// How long one input may take in a fuzz target before it counts as a failure,
/// plus [`SLOW_PER_ITEM`] for each event or region it asked for: far above what
/// the work needs, even under the sanitizers and on a busy machine (the report of
/// 4000 regions takes about 0.6 s there), so that only a blow-up reaches it. Work
/// that grows with the square of the items (the report once compared every pair of
/// 4000 regions for 46 s without sanitizers) is far past it. Only the fuzz targets
/// measure time; the regression tests never do.
pub const SLOW: Duration = Duration::from_secs(1);
/// See [`SLOW`].
pub const SLOW_PER_ITEM: Duration = Duration::from_millis(1);

/// Runs `check` on `data` and fails when it takes longer than [`SLOW`] plus
/// [`SLOW_PER_ITEM`] for each item `check` says the input asked for.
pub fn bounded(data: &[u8], check: impl FnOnce(&[u8]) -> usize) {
    let start = Instant::now();
    let items = check(data);
    let took = start.elapsed();
    let bound = SLOW + SLOW_PER_ITEM * u32::try_from(items).unwrap_or(u32::MAX);
    assert!(
        took < bound,
        "slow input: {took:?} for {} bytes and {items} events and regions (more than {bound:?})",
        data.len()
    );
}
