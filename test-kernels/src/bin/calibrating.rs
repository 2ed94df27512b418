//! calibrating: a kernel that finds its TSC frequency like Hermit 0.6–0.10.
//!
//! An `ET_DYN` static PIE with TLS and the HERMIT note of entry version 3 (what the
//! kernels 0.6.1–0.6.9 declare), no GNU ABI tag: the older generation. After the
//! common checks it takes the frequency from `-freq <MHz>` on its command line, or
//! else measures the TSC against the PIT for 30 ms, or else (no PIT: microvm) guesses
//! 2 GHz, and prints where the frequency came from and what finding it cost (see
//! `test_kernels::frequency`). It shows the time a loader saves a kernel by handing
//! it its frequency.

#![no_std]
#![no_main]

use test_kernels::checks::{Generation, Kind, Spec};

test_kernels::hermit_note!(SPEC.entry_version);
test_kernels::tls_image!();
test_kernels::entry_point!(SPEC);

const SPEC: Spec = Spec {
    name: "calibrating",
    greeting: None,
    kind: Kind::Dyn,
    generation: Generation::Older,
    entry_version: 3,
    tls: Some(tls_offsets),
    extra_group: Some(test_kernels::checks::frequency::run),
};
