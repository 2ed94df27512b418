//! Everything that touches the machine, one file per job: port I/O and the exit
//! port, the serial port, control registers and MSRs, link-time addresses, reading
//! memory the loader handed over, the probe statics, TLS through FS, the PIT and
//! the TSC, the exception handlers, the faults the `crashing` kernel commits on
//! purpose, the C memory functions and the start-up assembly.
//!
//! These are the only modules with `unsafe`; every other module forbids it. Memory
//! the loader points at is only read after [`memory::mapped_bytes`] found every page
//! of it present in the live page tables, so a bad pointer becomes a failed check,
//! not a fault.
//!
//! Nothing here knows about the checks: the exception handlers report through a
//! function the kernel registers ([`exceptions::install_idt`]), and the start-up
//! code calls the Rust function it is given ([`crate::start_stub!`]). The
//! dependencies run one way, from the checks to here.

pub mod cpu;
pub mod entry;
pub mod exceptions;
pub mod faults;
pub mod low_memory;
pub mod mem_ops;
pub mod memory;
pub mod pit;
pub mod port;
pub mod probes;
pub mod serial;
pub mod symbols;
pub mod tls;
