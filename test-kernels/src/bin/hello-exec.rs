//! hello-exec: the position-dependent test kernel.
//!
//! An `ET_EXEC` linked at 0x800000 with the HERMIT note (entry version 4), no GNU ABI
//! tag (position-dependent kernels are the older generation) and TLS at a fixed
//! address. It checks that it was loaded at its link address, entered at its own
//! entry point, and the common checks, with the older generation's paging rules.

#![no_std]
#![no_main]

use test_kernels::checks::{Generation, Kind, Spec};

test_kernels::hermit_note!(SPEC.entry_version);
test_kernels::tls_image!();
test_kernels::entry_point!(SPEC);

const SPEC: Spec = Spec {
    name: "hello-exec",
    greeting: None,
    kind: Kind::Exec,
    generation: Generation::Older,
    entry_version: test_kernels::notes::ENTRY_VERSION,
    tls: Some(tls_offsets),
    extra_group: None,
};
