//! The least `-m` an application boots with, planned on the host before QEMU starts,
//! with the loader's own library: where QEMU puts the loader, the module and its
//! strings for a given RAM size (the model below), then `rusty_loader::elf::inspect`
//! and `rusty_loader::layout::plan_layout` exactly as the loader runs them. So
//! `cargo xtask run -m 8M` can say "this application needs at least -m 9M" with the
//! number that boots, instead of a refusal from inside the guest.
//!
//! What the model takes from QEMU 7.2 (each seen in the loader's trace of a boot):
//! - usable RAM is 0–0x9fc00 and 1 MiB up to the end of RAM, less the top 128 KiB
//!   that SeaBIOS keeps on `pc` (microvm keeps nothing);
//! - Multiboot: the module list and the command lines in the page(s) right after the
//!   loader image, the module after them, the MBI at 0x9000;
//! - PVH: the module at the top of RAM, below the 0x28000 bytes `pc` keeps for ACPI
//!   (microvm: none), page-aligned; the loader writes the MBI into its own image.
//!
//! Other boots are not modelled, and not planned ([`Guest::new`] gives none): under
//! UEFI the firmware chooses where everything goes, and `q35`'s SeaBIOS map was not
//! read off boots. There the loader's own refusal names the least RAM.

use rusty_loader::elf;
use rusty_loader::error::LoadError;
use rusty_loader::layout::{plan_layout, Layout, LayoutInput};
use rusty_loader::memory::Region;

use crate::qemu::{BootProtocol, Machine, QemuConfig};

const MIB: u64 = 1 << 20;
const PAGE: u64 = 0x1000;
/// Where RAM below 4 GiB ends at most in this model: the planning looks no further
/// (the loader reaches only the first 4 GiB, and both machines move RAM above 3 GiB
/// elsewhere).
const MODEL_LIMIT: u64 = 3 << 30;
/// The top of RAM SeaBIOS reserves on `pc` (its high tables).
const PC_FIRMWARE_TOP: u64 = 0x2_0000;
/// The bytes `pc` keeps below the top of RAM for ACPI tables when it places a PVH
/// initrd (QEMU's `acpi_data_size`).
const PC_ACPI_DATA: u64 = 0x2_8000;
/// Where QEMU's Multiboot loader writes the MBI.
const MULTIBOOT_INFO: Region = Region::new(0x9000, 0xa000);
/// A low page standing in for the MBI a PVH boot's loader writes into its own image:
/// below the loader, so that it moves nothing.
const PVH_INFO: Region = Region::new(0x2000, 0x3000);
/// Bytes of one Multiboot module-list entry.
const MODULE_ENTRY: u64 = 16;

/// One boot's contents in guest memory, apart from the RAM size.
pub struct Guest<'a> {
    /// The loader image `[start, end)`, as its ELF's symbols give it.
    pub loader: Region,
    /// The application file.
    pub app: &'a [u8],
    /// The entry, one of the two modelled.
    pub entry: ModelledEntry,
    /// Bytes the firmware keeps at the top of RAM (SeaBIOS on `pc`; microvm's qboot
    /// none).
    pub firmware_top: u64,
    /// Bytes QEMU keeps below the top of RAM when it places a PVH module.
    pub pvh_kept: u64,
    /// Bytes of the strings QEMU's Multiboot loader copies next to the loader image
    /// (the command line with the kernel's file name, the module string, its own
    /// name), each with its terminating zero.
    pub strings: u64,
}

/// The entries whose placement the model knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelledEntry {
    Multiboot,
    Pvh,
}

/// Why no size was planned.
#[derive(Debug, PartialEq, Eq)]
pub enum Unplanned {
    /// The loader refuses the application whatever the RAM: it says why when it boots.
    Refused(LoadError),
    /// Nothing up to 3 GiB fits: the loader's refusal then.
    TooLarge(LoadError),
}

impl<'a> Guest<'a> {
    /// The boot `config` describes, with the loader image `loader` and the
    /// application's bytes; none for a boot the model does not know (UEFI, `q35`).
    pub fn new(config: &QemuConfig, loader: (u64, u64), app: &'a [u8]) -> Option<Guest<'a>> {
        let entry = match config.boot {
            BootProtocol::Multiboot => ModelledEntry::Multiboot,
            BootProtocol::Pvh => ModelledEntry::Pvh,
            BootProtocol::Uefi => return None,
        };
        let (firmware_top, pvh_kept) = match config.machine {
            Machine::Pc => (PC_FIRMWARE_TOP, PC_ACPI_DATA),
            Machine::Microvm => (0, 0),
            Machine::Q35 => return None,
        };
        // Zero terminators and QEMU's own name ("qemu") with room to spare.
        let strings = config.command_line().len() as u64 + config.module_string_len() as u64 + 16;
        Some(Guest {
            loader: Region::new(loader.0, loader.1),
            app,
            entry,
            firmware_top,
            pvh_kept,
            strings,
        })
    }

    /// Plans the boot as the loader would with `ram` bytes of RAM: its layout, or the
    /// loader's refusal (`NotEnoughMemory` for the module where QEMU cannot put it).
    pub fn plan(&self, ram: u64) -> Result<Layout, LoadError> {
        let kernel = elf::inspect(self.app)?;
        let top = ram.min(MODEL_LIMIT);
        let usable_end = top.saturating_sub(self.firmware_top);
        let usable = [Region::new(0, 0x9_fc00), Region::new(MIB, usable_end)];
        let len = self.app.len() as u64;
        let (mbi, boot_data, module) = match self.entry {
            ModelledEntry::Multiboot => {
                let strings_start = self.loader.end.next_multiple_of(PAGE);
                let boot_data =
                    Region::new(strings_start, strings_start + MODULE_ENTRY + self.strings);
                let module_start = boot_data.end.next_multiple_of(PAGE);
                (
                    MULTIBOOT_INFO,
                    boot_data,
                    Region::new(module_start, module_start + len),
                )
            }
            ModelledEntry::Pvh => {
                let initrd_max = top.saturating_sub(self.pvh_kept + 1);
                let start = initrd_max
                    .checked_sub(len)
                    .ok_or(LoadError::NotEnoughMemory {
                        what: "module (QEMU puts it at the top of RAM)",
                        start: 0,
                        end: len,
                    })?
                    & !(PAGE - 1);
                (PVH_INFO, Region::new(0, 0), Region::new(start, start + len))
            }
        };
        // The loader reads the module from RAM: QEMU's copy must be in it.
        let in_ram = |region: Region| {
            usable
                .iter()
                .any(|ram| ram.start <= region.start && region.end <= ram.end)
        };
        if !in_ram(module) {
            return Err(LoadError::NotEnoughMemory {
                what: "module",
                start: module.start,
                end: module.end,
            });
        }
        plan_layout(&LayoutInput {
            ram: &usable,
            loader: self.loader,
            loader_parts: &[],
            stack_guard: Region::new(0, 0),
            mbi,
            boot_data,
            module,
            kernel: kernel.placement(),
        })
    }

    /// The least whole number of MiB the loader boots this application with, and
    /// its layout then.
    pub fn least_mib(&self) -> Result<(u64, Layout), Unplanned> {
        // What the loader refuses with all the RAM there is, more cannot help.
        match self.plan(MODEL_LIMIT) {
            Err(
                error @ (LoadError::NotEnoughMemory { .. } | LoadError::NoRoomBesideModule { .. }),
            ) => return Err(Unplanned::TooLarge(error)),
            Err(error) => return Err(Unplanned::Refused(error)),
            Ok(_) => {}
        }
        let first = self.loader.end.div_ceil(MIB).max(1);
        (first..=MODEL_LIMIT / MIB)
            .find_map(|mib| Some((mib, self.plan(mib * MIB).ok()?)))
            .ok_or(Unplanned::TooLarge(LoadError::NotEnoughMemory {
                what: "the application",
                start: 0,
                end: MODEL_LIMIT,
            }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Real applications against real boots: tests/exit_statuses.rs.

    #[test]
    fn what_the_loader_refuses_anyway_is_not_planned() {
        let guest = Guest {
            loader: Region::new(0x10_0000, 0x25_8000),
            app: b"#!/bin/sh\n",
            entry: ModelledEntry::Multiboot,
            firmware_top: PC_FIRMWARE_TOP,
            pvh_kept: PC_ACPI_DATA,
            strings: 80,
        };
        assert!(matches!(
            guest.least_mib(),
            Err(Unplanned::Refused(LoadError::NotElf { .. }))
        ));
    }
}
