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
pub mod efi;
pub mod elf;
pub mod error;
pub mod faults;
pub mod fdt;
pub mod layout;
mod le;
pub mod mbi_writer;
pub mod memory;
pub mod multiboot;
pub mod paging;
pub mod pvh;
#[cfg(test)]
mod test_memory;
pub mod wire;

/// How the loader was entered: the boot protocol of the VMM that started it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryProtocol {
    /// Multiboot 1 (`start32`): QEMU's `-kernel` with the 32-bit image; EBX holds the
    /// Multiboot information.
    Multiboot,
    /// Xen's x86/HVM direct boot ABI (`pvh_start32`): QEMU (pc, microvm), Cloud
    /// Hypervisor and Firecracker with the 64-bit ELF; EBX holds the start info.
    Pvh,
    /// UEFI (`uefi_start64`, reached through the EFI stub of `rusty-loader.efi`):
    /// OVMF's `-kernel`, or `EFI/BOOT/BOOTX64.EFI` on an EFI system partition; the
    /// loader asks the firmware for the application, the command line and the
    /// memory map, and exits its boot services.
    Uefi,
}

impl EntryProtocol {
    /// The name the trace and the reports use.
    pub const fn name(self) -> &'static str {
        match self {
            EntryProtocol::Multiboot => "multiboot",
            EntryProtocol::Pvh => "pvh",
            EntryProtocol::Uefi => "uefi",
        }
    }
}

/// Module 0, as every entry's reader hands it over: where the VMM put the
/// application file, its bytes, and its string (the file name and the loader's
/// options after it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Module<'m> {
    /// Where the file lies.
    pub region: memory::Region,
    pub bytes: &'m [u8],
    pub string: Option<&'m str>,
    /// Where the string lies, with its NUL.
    pub string_region: Option<memory::Region>,
}
