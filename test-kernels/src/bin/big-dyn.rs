//! big-dyn: a test kernel the size of a real Hermit application.
//!
//! hello-dyn (an `ET_DYN` static PIE with TLS, the HERMIT note of entry version 4
//! and the ABI tag of kernel 0.13.0) plus 576 KiB of data and 2304 references into
//! it, i.e. 2304 more `R_X86_64_RELATIVE` relocations (see `test_kernels::bulk`):
//! a Hermit 0.6.9 hello world has ~570 KB to copy and ~2245 relocations. It runs
//! hello-dyn's checks, then checks that every word arrived and every reference was
//! relocated. It is what the loader's copy and relocation times are measured on.

#![no_std]
#![no_main]

use test_kernels::checks::{Generation, Kind, Spec};

test_kernels::hermit_note!(SPEC.entry_version);
test_kernels::abi_tag_note!(0, 13, 0);
test_kernels::tls_image!();
test_kernels::entry_point!(SPEC);

const SPEC: Spec = Spec {
    name: "big-dyn",
    greeting: None,
    kind: Kind::Dyn,
    generation: Generation::Newer,
    entry_version: test_kernels::notes::ENTRY_VERSION,
    tls: Some(tls_offsets),
    extra_group: Some(test_kernels::checks::bulk::run),
};
