//! The loader's pure logic: ELF inspection and loading, relocation, memory layout,
//! page-table construction, FDT and boot-info building. Nothing here touches
//! hardware, so all of it builds and is tested on the host; the bare-metal binary
//! (`main.rs` and `arch/`) only gathers inputs and hands memory slices to it.
#![cfg_attr(not(test), no_std)]
// Memory access belongs to the loader binary's `arch` module; the library hands it
// out as safe slices and never needs `unsafe` (its tests may, to read raw layouts).
#![cfg_attr(not(test), forbid(unsafe_code))]

extern crate alloc;

pub mod bootinfo;
pub mod bump;
pub mod cmdline;
pub mod elf;
pub mod error;
pub mod fdt;
pub mod layout;
pub mod multiboot;
pub mod paging;
pub mod wire;
