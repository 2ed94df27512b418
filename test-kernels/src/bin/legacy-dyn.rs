//! legacy-dyn: the "older generation" test kernel.
//!
//! An `ET_DYN` static PIE with the HERMIT note (entry version 4) but no GNU ABI tag
//! and no TLS, like the kernels 0.6–0.10 built in 2024. It checks what those kernels
//! need besides the common checks: the recursive `PML4[511]` entry, nothing mapped at
//! or above the image end rounded up to 2 MiB, and that the boot info reports no TLS;
//! and, as its extra group, every relocation of its own table (`relocated-all`).

#![no_std]
#![no_main]

use test_kernels::checks::{Generation, Kind, Spec};

test_kernels::hermit_note!(SPEC.entry_version);
test_kernels::entry_point!(SPEC);

const SPEC: Spec = Spec {
    name: "legacy-dyn",
    greeting: Some("Hello from legacy-dyn, a Hermit-ABI test kernel of the older generation!"),
    kind: Kind::Dyn,
    generation: Generation::Older,
    entry_version: test_kernels::notes::ENTRY_VERSION,
    tls: None,
    extra_group: Some(test_kernels::checks::relocations::table),
};
