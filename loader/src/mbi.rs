//! Reads what the loader needs from the Multiboot information. The library's
//! `rusty_loader::multiboot` decides every range it reads (pointers, lengths, string
//! ends, what lies in usable RAM); this file only turns a range it asks for into a
//! slice, with physical memory reached by identity.

use alloc::vec::Vec;

use rusty_loader::cmdline;
use rusty_loader::error::LoadError;
use rusty_loader::memory::{merged_ram, PhysicalMemory, Region};
use rusty_loader::multiboot::Mbi;

use crate::arch::BOOT_IDENTITY_LIMIT;
use crate::trace;

/// The boot tables identity-map the first 4 GiB, which is where a Multiboot loader
/// puts everything (its structures use 32-bit addresses), and where the loader
/// reaches anything a PVH start info points to.
pub struct IdentityMemory;

impl PhysicalMemory<'static> for IdentityMemory {
    fn bytes(&self, addr: u64, len: u64) -> Option<&'static [u8]> {
        let end = addr.checked_add(len)?;
        // A slice needs a non-null start, even an empty one; below the limit the
        // range is mapped, and its length fits in an isize.
        if addr == 0 || end > BOOT_IDENTITY_LIMIT {
            return None;
        }
        // SAFETY: `[addr, end)` is non-null and below 4 GiB, hence identity-mapped by
        // the boot tables; bytes need no alignment; the MBI structures and the module
        // are never written while the loader reads them.
        Some(unsafe { core::slice::from_raw_parts(addr as *const u8, len as usize) })
    }
}

/// Module 0: where QEMU put the application file, its bytes, and the loader's
/// options from its string.
pub struct Module {
    pub region: Region,
    pub bytes: &'static [u8],
    pub keep_command_line: bool,
}

/// What the loader takes from the Multiboot information.
pub struct BootInputs {
    /// Usable RAM regions (memory map type 1), in map order.
    pub ram: Vec<Region>,
    /// The pages holding the MBI and its memory map.
    pub mbi_region: Region,
    /// The command line (kept where QEMU put it; the kernel gets a pointer to it).
    pub command_line: Option<&'static str>,
    /// The span of the command line and module strings, which must stay intact.
    pub boot_data: Region,
    /// Module 0, the application; None when QEMU got no `-initrd` (the caller
    /// refuses then, after tracing what it has).
    pub module: Option<Module>,
}

const PAGE: u64 = 4096;

fn page_span(region: Region) -> Region {
    Region {
        start: region.start & !(PAGE - 1),
        end: region.end.next_multiple_of(PAGE),
    }
}

fn hull(a: Option<Region>, b: Region) -> Option<Region> {
    Some(match a {
        None => b,
        Some(r) => Region {
            start: r.start.min(b.start),
            end: r.end.max(b.end),
        },
    })
}

/// Reads the MBI at `mbi_addr`. The memory map is traced as soon as it is read, so
/// that a refusal of what it points to next still shows the machine's memory.
pub fn read(mbi_addr: u32) -> Result<BootInputs, LoadError> {
    let mbi = Mbi::read(u64::from(mbi_addr), &IdentityMemory)?;
    let map = mbi.memory_map()?;
    trace::memory_map(&map.entries);
    let usable = merged_ram(&map.ram)?;

    let mut boot_data = None;
    let command_line = match mbi.command_line(&usable)? {
        Some((line, region)) => {
            boot_data = hull(boot_data, region);
            Some(line)
        }
        None => None,
    };
    let module = match mbi.module(&usable)? {
        None => None,
        Some(module) => {
            if let Some(region) = module.string_region {
                boot_data = hull(boot_data, region);
            }
            let options = cmdline::loader_options(module.string.unwrap_or(""))?;
            Some(Module {
                region: module.region,
                bytes: module.bytes,
                keep_command_line: options.keep_command_line,
            })
        }
    };

    Ok(BootInputs {
        ram: map.ram,
        mbi_region: page_span(map.span),
        command_line,
        boot_data: boot_data.map_or(Region { start: 0, end: 0 }, page_span),
        module,
    })
}
