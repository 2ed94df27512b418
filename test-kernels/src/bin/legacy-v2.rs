//! legacy-v2: a kernel of entry ABI version 2, as Hermit kernel 0.6.0 declares.
//!
//! An `ET_DYN` static PIE with TLS and the HERMIT note of version 2, no GNU ABI tag.
//! Its boot info is version 3's without the device-tree field (every later field 8
//! bytes lower, 120 bytes), and it gets no device tree: it checks the boot info at
//! those offsets, TLS included, and the older generation's paging rules.

#![no_std]
#![no_main]

use test_kernels::checks::{Generation, Kind, Spec};

test_kernels::hermit_note!(SPEC.entry_version);
test_kernels::tls_image!();
test_kernels::entry_point!(SPEC);

const SPEC: Spec = Spec {
    name: "legacy-v2",
    greeting: None,
    kind: Kind::Dyn,
    generation: Generation::Older,
    entry_version: 2,
    tls: Some(tls_offsets),
    extra_group: None,
};
