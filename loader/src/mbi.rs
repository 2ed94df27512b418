//! Reads what the loader needs from the Multiboot information, through the
//! `multiboot` crate, with physical memory reached by identity.

use alloc::vec::Vec;

use multiboot::information::{MemoryManagement, MemoryType, Multiboot, PAddr};
use rusty_loader::cmdline;
use rusty_loader::error::LoadError;
use rusty_loader::layout::Region;
use rusty_loader::wire::MapEntry;

use crate::arch::BOOT_IDENTITY_LIMIT;

/// The boot tables identity-map the first 4 GiB, which is where a Multiboot loader
/// puts everything (its structures use 32-bit addresses).
struct IdentityMemory;

impl MemoryManagement for IdentityMemory {
    unsafe fn paddr_to_slice(&self, addr: PAddr, length: usize) -> Option<&'static [u8]> {
        let end = addr.checked_add(length as u64)?;
        if addr == 0 || end > BOOT_IDENTITY_LIMIT {
            return None;
        }
        // SAFETY: the range is below 4 GiB, hence mapped; the MBI structures are never
        // written while the loader reads them.
        Some(unsafe { core::slice::from_raw_parts(addr as *const u8, length) })
    }

    unsafe fn allocate(&mut self, _length: usize) -> Option<(PAddr, &mut [u8])> {
        None
    }

    unsafe fn deallocate(&mut self, _addr: PAddr) {}
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
    /// Every memory-map entry, for the trace.
    pub memory_map: Vec<MapEntry>,
    /// Usable RAM regions (memory map type 1), in map order.
    pub ram: Vec<Region>,
    /// The pages holding the MBI and its memory map.
    pub mbi_region: Region,
    /// The command line (kept where QEMU put it; the kernel gets a pointer to it).
    pub command_line: Option<&'static str>,
    /// The span of the command line and module strings, which must stay intact.
    pub boot_data: Region,
    /// Module 0, the application.
    /// Module 0, the application; None when QEMU got no `-initrd` (the caller
    /// refuses then, after tracing what it has).
    pub module: Option<Module>,
}

const PAGE: u64 = 4096;

fn page_span(start: u64, end: u64) -> Region {
    Region {
        start: start & !(PAGE - 1),
        end: end.next_multiple_of(PAGE),
    }
}

fn hull(a: Option<Region>, start: u64, end: u64) -> Option<Region> {
    Some(match a {
        None => Region { start, end },
        Some(r) => Region {
            start: r.start.min(start),
            end: r.end.max(end),
        },
    })
}

pub fn read(mbi_addr: u32) -> Result<BootInputs, LoadError> {
    let mut memory = IdentityMemory;
    // SAFETY: the address comes from EBX at Multiboot entry; IdentityMemory only hands
    // out mapped ranges.
    let mb = unsafe { Multiboot::from_ptr(u64::from(mbi_addr), &mut memory) }.ok_or(
        LoadError::BadMultiboot {
            what: "the MBI address is not in mapped memory",
        },
    )?;

    let mbi_start = u64::from(mbi_addr);
    let mut mbi_span = Region {
        start: mbi_start,
        end: mbi_start + 116,
    };
    let mut ram = Vec::new();
    let mut memory_map = Vec::new();
    let regions = mb.memory_regions().ok_or(LoadError::BadMultiboot {
        what: "no memory map (flags bit 6 clear)",
    })?;
    for region in regions {
        let entry = region as *const _ as u64;
        mbi_span = Region {
            start: mbi_span.start.min(entry),
            end: mbi_span.end.max(entry + 24),
        };
        let start = region.base_address();
        let end = start.saturating_add(region.length());
        let kind = match region.memory_type() {
            MemoryType::Available => 1,
            MemoryType::Reserved => 2,
            MemoryType::ACPI => 3,
            MemoryType::NVS => 4,
            MemoryType::Defect => 5,
        };
        // The map is the firmware's, of any length, and an allocation failure on bare
        // metal is a panic: a map too large for the heap is a refusal.
        let too_large = |_| LoadError::BadMultiboot {
            what: "the memory map is too large for the loader's heap",
        };
        memory_map.try_reserve(1).map_err(too_large)?;
        memory_map.push(MapEntry { start, end, kind });
        if kind == 1 && end > start {
            ram.try_reserve(1).map_err(too_large)?;
            ram.push(Region { start, end });
        }
    }
    if ram.is_empty() {
        return Err(LoadError::BadMultiboot {
            what: "the memory map lists no usable RAM",
        });
    }

    let mut boot_data = None;
    let command_line = match mb.command_line() {
        Some(line) => {
            // The crate does not check the encoding; do it before trusting the &str.
            let line =
                core::str::from_utf8(line.as_bytes()).map_err(|_| LoadError::BadMultiboot {
                    what: "the command line is not UTF-8",
                })?;
            let start = line.as_ptr() as u64;
            boot_data = hull(boot_data, start, start + line.len() as u64 + 1);
            Some(line)
        }
        None => None,
    };

    let module = match mb.modules().and_then(|mut modules| modules.next()) {
        None => None,
        Some(module) => {
            if let Some(name) = module.string {
                let start = name.as_ptr() as u64;
                boot_data = hull(boot_data, start, start + name.len() as u64 + 1);
            }
            let options = cmdline::loader_options(module.string.unwrap_or(""))?;
            // A slice needs a non-null start, even an empty one.
            if module.start == 0 || module.end < module.start || module.end > BOOT_IDENTITY_LIMIT {
                return Err(LoadError::BadMultiboot {
                    what: "module 0 has an impossible address range",
                });
            }
            // SAFETY: the module range is below 4 GiB (checked), hence mapped, and QEMU
            // filled it.
            let bytes = unsafe {
                core::slice::from_raw_parts(
                    module.start as *const u8,
                    (module.end - module.start) as usize,
                )
            };
            Some(Module {
                region: Region {
                    start: module.start,
                    end: module.end,
                },
                bytes,
                keep_command_line: options.keep_command_line,
            })
        }
    };

    let boot_data = boot_data.map_or(Region { start: 0, end: 0 }, |r| page_span(r.start, r.end));
    Ok(BootInputs {
        memory_map,
        ram,
        mbi_region: page_span(mbi_span.start, mbi_span.end),
        command_line,
        boot_data,
        module,
    })
}
