//! hello-dyn: the "newer generation" test kernel and the demo app.
//!
//! An `ET_DYN` static PIE like a real Hermit app: relocations, TLS, the HERMIT note
//! (entry version 4) and the GNU ABI tag of kernel 0.13.0, so the loader treats it as
//! a kernel 0.11+ and this kernel checks the paging rules of that generation (every
//! page-table page identity-mapped, no 1 GiB pages) besides the common checks.

#![no_std]
#![no_main]

use test_kernels::checks::{Generation, Kind, Spec};

test_kernels::hermit_note!(SPEC.entry_version);
test_kernels::abi_tag_note!(0, 13, 0);
test_kernels::tls_image!();
test_kernels::entry_point!(SPEC);

const SPEC: Spec = Spec {
    name: "hello-dyn",
    greeting: Some("Hello from hello-dyn, a Hermit-ABI test kernel!"),
    kind: Kind::Dyn,
    generation: Generation::Newer,
    entry_version: test_kernels::notes::ENTRY_VERSION,
    tls: Some(tls_offsets),
    extra_group: None,
};
