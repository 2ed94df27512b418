//! Reading the PVH start info (Xen's x86/HVM direct boot ABI) that a VMM hands the
//! loader at its PVH entry: the memory map, the command line and module 0 (the
//! application), without trusting any pointer or length in it.
//!
//! As [`crate::multiboot`] does for the Multiboot information, this module decides
//! every range it asks the binary's [`PhysicalMemory`] for: fields are read from
//! bytes at the offsets of the `pvh` crate's `#[repr(C)]` structures, every sum is
//! checked, strings are searched for their end within [`MAX_STRING_BYTES`], the map
//! is read within [`MAX_MEMORY_MAP_ENTRIES`] and checked for overlapping entries in
//! O(n log n). A broken start info is refused with one line (`bad-start-info`),
//! never a panic, a wild read or a long scan.
//!
//! Unlike QEMU's Multiboot information, the start info and what it points to may lie
//! in firmware memory outside usable RAM (QEMU's PVH option ROM keeps the start
//! info, the module list and the command line in its own data), so only the module
//! has to lie in usable RAM; the loader copies everything else the kernel reads
//! (see [`crate::mbi_writer`]).

use alloc::vec::Vec;
use core::mem::{offset_of, size_of};

use pvh::start_info::{MemmapTableEntry, ModlistEntry, StartInfo as RawStartInfo};

use crate::error::LoadError;
use crate::le::{u32_at, u64_at};
use crate::memory::{MemoryMap, PhysicalMemory, Region};
use crate::multiboot::{in_ram, MAX_STRING_BYTES};
use crate::wire::MapEntry;
use crate::Module;

/// The start info's magic (`XEN_HVM_START_MAGIC_VALUE`).
pub const START_INFO_MAGIC: u32 = pvh::start_info::START_MAGIC_VALUE;
/// The size of the start info of version 1 and later, which has the memory map.
const START_INFO_SIZE: u64 = size_of::<RawStartInfo>() as u64;
/// The size of one memory-map entry: address, size, type, reserved.
const MAP_ENTRY_SIZE: u64 = size_of::<MemmapTableEntry>() as u64;
/// The size of one module-list entry: address, size, command line, reserved.
const MODULE_ENTRY_SIZE: u64 = size_of::<ModlistEntry>() as u64;
/// The most memory-map entries the loader reads (as many as fit in the 64 KiB a
/// Multiboot map may have; VMMs hand over fewer than twenty).
pub const MAX_MEMORY_MAP_ENTRIES: u32 =
    (crate::multiboot::MAX_MEMORY_MAP_BYTES / MAP_ENTRY_SIZE) as u32;

/// The start info's fields, read once.
pub struct StartInfo<'a, M> {
    memory: &'a M,
    address: u64,
    nr_modules: u32,
    modlist: u64,
    command_line: u64,
    rsdp: u64,
    memmap: u64,
    memmap_entries: u32,
}

fn bad(what: &'static str) -> LoadError {
    LoadError::BadStartInfo { what }
}

/// Reads `len` bytes at `address`, all of them or none.
fn read_exact<'m, M: PhysicalMemory<'m>>(
    memory: &M,
    address: u64,
    len: u64,
    what: &'static str,
) -> Result<&'m [u8], LoadError> {
    memory
        .bytes(address, len)
        .filter(|b| b.len() as u64 == len)
        .ok_or(bad(what))
}

impl<'a, 'm, M: PhysicalMemory<'m>> StartInfo<'a, M> {
    /// Reads the start info at `address` (from EBX at the PVH entry): its magic
    /// first, then, for version 1 and later, the whole structure.
    pub fn read(address: u64, memory: &'a M) -> Result<Self, LoadError> {
        let head = read_exact(memory, address, 8, "EBX does not point into mapped memory")?;
        let magic = u32_at(head, offset_of!(RawStartInfo, magic));
        if magic != START_INFO_MAGIC {
            return Err(LoadError::StartInfoMagic { address, magic });
        }
        if u32_at(head, offset_of!(RawStartInfo, version)) == 0 {
            return Err(bad(
                "version 0 has no memory map (the loader needs start info version 1 or later)",
            ));
        }
        let bytes = read_exact(
            memory,
            address,
            START_INFO_SIZE,
            "the start info runs out of mapped memory",
        )?;
        Ok(StartInfo {
            memory,
            address,
            nr_modules: u32_at(bytes, offset_of!(RawStartInfo, nr_modules)),
            modlist: u64_at(bytes, offset_of!(RawStartInfo, modlist_paddr)),
            command_line: u64_at(bytes, offset_of!(RawStartInfo, cmdline_paddr)),
            rsdp: u64_at(bytes, offset_of!(RawStartInfo, rsdp_paddr)),
            memmap: u64_at(bytes, offset_of!(RawStartInfo, memmap_paddr)),
            memmap_entries: u32_at(bytes, offset_of!(RawStartInfo, memmap_entries)),
        })
    }

    /// Where the start info itself lies.
    pub fn region(&self) -> Region {
        Region::new(self.address, self.address + START_INFO_SIZE)
    }

    /// The ACPI RSDP's address the VMM gave (0: none).
    pub fn rsdp(&self) -> u64 {
        self.rsdp
    }

    /// The memory map: every entry, and the usable RAM in it. Refuses a map that is
    /// empty, longer than [`MAX_MEMORY_MAP_ENTRIES`], unreadable, with an entry that
    /// wraps around the address space, with two entries that overlap, or without
    /// usable RAM.
    pub fn memory_map(&self) -> Result<MemoryMap, LoadError> {
        if self.memmap_entries == 0 || self.memmap == 0 {
            return Err(bad("no memory map (memmap_entries 0)"));
        }
        if self.memmap_entries > MAX_MEMORY_MAP_ENTRIES {
            return Err(bad("the memory map has more than 2730 entries"));
        }
        let length = u64::from(self.memmap_entries) * MAP_ENTRY_SIZE;
        let map = read_exact(
            self.memory,
            self.memmap,
            length,
            "the memory map is not in mapped memory",
        )?;
        // An allocation failure on bare metal is a panic: a map too large for the
        // heap is a refusal instead.
        let too_large = |_| bad("the memory map is too large for the loader's heap");
        let count = self.memmap_entries as usize;
        let mut entries = Vec::new();
        entries.try_reserve_exact(count).map_err(too_large)?;
        let mut ram = Vec::new();
        for raw in map.chunks_exact(MAP_ENTRY_SIZE as usize) {
            let start = u64_at(raw, offset_of!(MemmapTableEntry, addr));
            let size = u64_at(raw, offset_of!(MemmapTableEntry, size));
            let end = start.checked_add(size).ok_or(bad(
                "a memory-map entry runs past the end of the address space",
            ))?;
            let kind = match u32_at(raw, offset_of!(MemmapTableEntry, ty)) {
                // RAM, reserved, ACPI, ACPI NVS and unusable mean what the Multiboot
                // types 1-5 mean; disabled, persistent memory and anything else are
                // not the kernel's to use.
                kind @ 1..=5 => kind as u8,
                _ => 2,
            };
            entries.push(MapEntry { start, end, kind });
            if kind == 1 && end > start {
                ram.try_reserve(1).map_err(too_large)?;
                ram.push(Region::new(start, end));
            }
        }
        check_no_overlap(&entries)?;
        if ram.is_empty() {
            return Err(bad("the memory map lists no usable RAM"));
        }
        Ok(MemoryMap { entries, ram })
    }

    /// The command line, if the start info has one (a firmware buffer, read up to
    /// its NUL within [`MAX_STRING_BYTES`]), with the range it occupies (its NUL
    /// included).
    pub fn command_line(&self) -> Result<Option<(&'m str, Region)>, LoadError> {
        if self.command_line == 0 {
            return Ok(None);
        }
        let line = string(
            self.memory,
            self.command_line,
            "the command line has no end (NUL) within 64 KiB of mapped memory",
            "the command line is not UTF-8",
        )?;
        let region = Region::new(self.command_line, self.command_line + line.len() as u64 + 1);
        Ok(Some((line, region)))
    }

    /// Module 0 (the application), if the start info lists modules; `ram` is
    /// [`crate::memory::merged_ram`] of the map. Module 0's own command line,
    /// when the VMM gives one, plays the part of the Multiboot module string (the
    /// loader's options).
    pub fn module(&self, ram: &[Region]) -> Result<Option<Module<'m>>, LoadError> {
        if self.nr_modules == 0 {
            return Ok(None);
        }
        let entry = read_exact(
            self.memory,
            self.modlist,
            MODULE_ENTRY_SIZE,
            "the module list is not in mapped memory",
        )?;
        let start = u64_at(entry, offset_of!(ModlistEntry, paddr));
        let size = u64_at(entry, offset_of!(ModlistEntry, size));
        let string_address = u64_at(entry, offset_of!(ModlistEntry, cmdline_paddr));
        if size == 0 {
            return Err(LoadError::EmptyModule);
        }
        let end = start
            .checked_add(size)
            .ok_or(bad("module 0 runs past the end of the address space"))?;
        if !in_ram(ram, start, end) {
            return Err(LoadError::NotEnoughMemory {
                what: "module 0 (the application)",
                start,
                end,
            });
        }
        let bytes = read_exact(self.memory, start, size, "module 0 is not in mapped memory")?;
        let (string, string_region) = if string_address == 0 {
            (None, None)
        } else {
            let text = string(
                self.memory,
                string_address,
                "module 0's command line has no end (NUL) within 64 KiB of mapped memory",
                "module 0's command line is not UTF-8",
            )?;
            let region = Region::new(string_address, string_address + text.len() as u64 + 1);
            (Some(text), Some(region))
        };
        Ok(Some(Module {
            region: Region::new(start, end),
            bytes,
            string,
            string_region,
        }))
    }
}

/// Refuses a map in which two non-empty entries share memory: a VMM that says one
/// range is both RAM and reserved gives the loader nothing safe to place the kernel
/// by. Sorting a copy makes the check O(n log n) for any order of entries.
fn check_no_overlap(entries: &[MapEntry]) -> Result<(), LoadError> {
    let mut sorted: Vec<(u64, u64)> = Vec::new();
    sorted
        .try_reserve_exact(entries.len())
        .map_err(|_| bad("the memory map is too large for the loader's heap"))?;
    sorted.extend(
        entries
            .iter()
            .filter(|e| e.start < e.end)
            .map(|e| (e.start, e.end)),
    );
    if !sorted.is_sorted() {
        sorted.sort_unstable();
    }
    // Sorted by start, an entry overlaps some earlier one only if it overlaps its
    // predecessor or one reaching further; tracking the furthest end finds both.
    let mut furthest: Option<(u64, u64)> = None;
    for &(start, end) in &sorted {
        if let Some(before) = furthest {
            if start < before.1 {
                return Err(LoadError::OverlappingMemoryMap {
                    first: before,
                    second: (start, end),
                });
            }
        }
        if furthest.is_none_or(|before| end > before.1) {
            furthest = Some((start, end));
        }
    }
    Ok(())
}

/// A NUL-terminated string at `address`, searched for its end within
/// [`MAX_STRING_BYTES`] (and the mapped memory).
fn string<'m, M: PhysicalMemory<'m>>(
    memory: &M,
    address: u64,
    unterminated: &'static str,
    not_utf8: &'static str,
) -> Result<&'m str, LoadError> {
    // The NUL may be the byte just past the longest string. Near the end of mapped
    // memory, look only as far as it goes, a page at a time.
    let mut window = MAX_STRING_BYTES + 1;
    let bytes = loop {
        if let Some(bytes) = memory.bytes(address, window) {
            break bytes;
        }
        if window <= 4096 {
            return Err(bad(unterminated));
        }
        window -= 4096;
    };
    crate::multiboot::nul_terminated(bytes, unterminated, not_utf8).map_err(bad)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::merged_ram;
    use crate::test_memory::{put32, put64, put_bytes, Buffer};
    use proptest::prelude::*;

    const BASE: u64 = 0x1000;
    const START_INFO: u64 = 0x1000;
    const MAP: u64 = 0x1100;
    const CMDLINE: u64 = 0x1200;
    const MODULES: u64 = 0x1300;
    const MODULE: u64 = 0x2000;

    fn put_entry(memory: &mut Buffer, index: u64, addr: u64, size: u64, ty: u32) {
        let at = MAP + index * MAP_ENTRY_SIZE;
        put64(memory, at, addr);
        put64(memory, at + 8, size);
        put32(memory, at + 16, ty);
    }

    /// A start info as QEMU's PVH option ROM builds it: version 1, a map with RAM
    /// covering the buffer and a reserved hole, a command line, one module.
    fn qemu_like() -> Buffer {
        let mut memory = Buffer {
            base: BASE,
            bytes: vec![0; 0x3000],
        };
        put32(&mut memory, START_INFO, START_INFO_MAGIC);
        put32(&mut memory, START_INFO + 4, 1);
        put32(&mut memory, START_INFO + 12, 1);
        put64(&mut memory, START_INFO + 16, MODULES);
        put64(&mut memory, START_INFO + 24, CMDLINE);
        put64(&mut memory, START_INFO + 32, 0xf_5a90);
        put64(&mut memory, START_INFO + 40, MAP);
        put32(&mut memory, START_INFO + 48, 3);
        put_entry(&mut memory, 0, BASE, 0x1800, 1);
        put_entry(&mut memory, 1, BASE + 0x1800, 0x1800, 1);
        put_entry(&mut memory, 2, 0xfffc_0000, 0x4_0000, 2);
        put_bytes(&mut memory, CMDLINE, b"-freq 2800 -- app\0");
        put64(&mut memory, MODULES, MODULE);
        put64(&mut memory, MODULES + 8, 0x200);
        put_bytes(&mut memory, MODULE, b"\x7fELF");
        memory
    }

    /// Everything the loader reads, or the first refusal.
    fn read_all(
        memory: &Buffer,
    ) -> Result<(MemoryMap, Option<&str>, Option<Module<'_>>), LoadError> {
        let info = StartInfo::read(START_INFO, &memory)?;
        let map = info.memory_map()?;
        let line = info.command_line()?.map(|(line, _)| line);
        let module = info.module(&merged_ram(&map.ram)?)?;
        Ok((map, line, module))
    }

    #[test]
    fn the_structures_have_the_abi_layout() {
        assert_eq!(START_INFO_SIZE, 56);
        assert_eq!(MAP_ENTRY_SIZE, 24);
        assert_eq!(MODULE_ENTRY_SIZE, 32);
        assert_eq!(START_INFO_MAGIC, 0x336e_c578);
    }

    #[test]
    fn reads_what_qemu_hands_over() {
        let memory = qemu_like();
        let buffer = &memory;
        let info = StartInfo::read(START_INFO, &buffer).unwrap();
        assert_eq!(info.rsdp(), 0xf_5a90);
        assert_eq!(info.region(), Region::new(START_INFO, START_INFO + 56));
        assert_eq!(
            info.command_line().unwrap(),
            Some(("-freq 2800 -- app", Region::new(CMDLINE, CMDLINE + 18)))
        );
        let (map, line, module) = read_all(&memory).unwrap();
        assert_eq!(
            map.entries[2],
            MapEntry {
                start: 0xfffc_0000,
                end: 0x1_0000_0000,
                kind: 2
            }
        );
        assert_eq!(map.ram.len(), 2);
        assert_eq!(line, Some("-freq 2800 -- app"));
        let module = module.unwrap();
        assert_eq!(module.region, Region::new(MODULE, MODULE + 0x200));
        assert_eq!(&module.bytes[..4], b"\x7fELF");
        assert_eq!((module.string, module.string_region), (None, None));
    }

    #[test]
    fn a_module_command_line_is_its_string() {
        let mut memory = qemu_like();
        put64(&mut memory, MODULES + 16, 0x1400);
        put_bytes(&mut memory, 0x1400, b"app keep-cmdline\0");
        let module = read_all(&memory).unwrap().2.unwrap();
        assert_eq!(module.string, Some("app keep-cmdline"));
        assert_eq!(module.string_region, Some(Region::new(0x1400, 0x1411)));
    }

    #[test]
    fn a_wrong_magic_or_version_is_refused() {
        let mut memory = qemu_like();
        put32(&mut memory, START_INFO, 0x2bad_b002);
        let error = read_all(&memory).unwrap_err();
        assert_eq!(
            error,
            LoadError::StartInfoMagic {
                address: START_INFO,
                magic: 0x2bad_b002
            }
        );
        assert_eq!(error.exit_code(), crate::error::ExitCode::BadStartInfo);
        assert_eq!(
            error.to_string(),
            "unusable PVH start info: EBX points at 0x1000, which holds 0x2badb002 where the start info's magic 0x336ec578 belongs"
        );
        let mut memory = qemu_like();
        put32(&mut memory, START_INFO + 4, 0);
        assert!(matches!(
            read_all(&memory).unwrap_err(),
            LoadError::BadStartInfo { what } if what.starts_with("version 0")
        ));
        assert_eq!(
            StartInfo::read(0x3ffc, &&qemu_like()).err(),
            Some(bad("EBX does not point into mapped memory"))
        );
    }

    #[test]
    fn no_module_is_none_and_an_empty_one_is_refused() {
        let mut memory = qemu_like();
        put32(&mut memory, START_INFO + 12, 0);
        assert_eq!(read_all(&memory).unwrap().2, None);
        let mut memory = qemu_like();
        put64(&mut memory, MODULES + 8, 0);
        assert_eq!(read_all(&memory).unwrap_err(), LoadError::EmptyModule);
        let mut memory = qemu_like();
        put64(&mut memory, MODULES + 8, u64::MAX);
        assert_eq!(
            read_all(&memory).unwrap_err(),
            bad("module 0 runs past the end of the address space")
        );
        // A module outside usable RAM: -m too small.
        let mut memory = qemu_like();
        put64(&mut memory, MODULES, 0xfffc_0000);
        assert!(matches!(
            read_all(&memory).unwrap_err(),
            LoadError::NotEnoughMemory {
                start: 0xfffc_0000,
                ..
            }
        ));
    }

    #[test]
    fn overlapping_map_entries_are_refused_in_any_order() {
        let mut memory = qemu_like();
        // RAM [0x1000, 0x2800) and a reserved [0x2000, 0x3000) listed after it.
        put_entry(&mut memory, 2, 0x2000, 0x1000, 2);
        assert_eq!(
            read_all(&memory).unwrap_err(),
            LoadError::OverlappingMemoryMap {
                first: (0x1000, 0x2800),
                second: (0x2000, 0x3000)
            }
        );
        // One entry inside an earlier, longer one that its neighbour does not reach.
        let entries = [
            MapEntry {
                start: 0,
                end: 0x10_0000,
                kind: 1,
            },
            MapEntry {
                start: 0x1000,
                end: 0x2000,
                kind: 2,
            },
            MapEntry {
                start: 0x8000,
                end: 0x9000,
                kind: 2,
            },
        ];
        assert!(check_no_overlap(&entries).is_err());
        // Touching entries and empty ones do not overlap.
        let entries = [
            MapEntry {
                start: 0x1000,
                end: 0x2000,
                kind: 1,
            },
            MapEntry {
                start: 0,
                end: 0x1000,
                kind: 2,
            },
            MapEntry {
                start: 0x1800,
                end: 0x1800,
                kind: 2,
            },
        ];
        assert_eq!(check_no_overlap(&entries), Ok(()));
    }

    #[test]
    fn broken_maps_and_strings_are_refused() {
        /// A change to a good start info, and the refusal it causes.
        type Case<'a> = (&'a dyn Fn(&mut Buffer), &'a str);
        let cases: [Case; 7] = [
            (
                &|m| put32(m, START_INFO + 48, 0),
                "no memory map (memmap_entries 0)",
            ),
            (
                &|m| put32(m, START_INFO + 48, MAX_MEMORY_MAP_ENTRIES + 1),
                "the memory map has more than 2730 entries",
            ),
            (
                &|m| put64(m, START_INFO + 40, 0x3fd0),
                "the memory map is not in mapped memory",
            ),
            (
                &|m| put64(m, MAP + 8, u64::MAX),
                "a memory-map entry runs past the end of the address space",
            ),
            (
                &|m| {
                    put32(m, MAP + 16, 2);
                    put32(m, MAP + 24 + 16, 7);
                },
                "the memory map lists no usable RAM",
            ),
            (
                &|m| put64(m, START_INFO + 16, 0x3ff0),
                "the module list is not in mapped memory",
            ),
            (
                &|m| put_bytes(m, CMDLINE, b"\xff\xfe\0"),
                "the command line is not UTF-8",
            ),
        ];
        for (damage, why) in cases {
            let mut memory = qemu_like();
            damage(&mut memory);
            assert_eq!(read_all(&memory).unwrap_err(), bad(why), "{why}");
        }
        // No NUL before the end of mapped memory.
        let mut memory = qemu_like();
        let end = memory.bytes.len();
        memory.bytes[(CMDLINE - BASE) as usize..end].fill(b'a');
        assert_eq!(
            read_all(&memory).unwrap_err(),
            bad("the command line has no end (NUL) within 64 KiB of mapped memory")
        );
    }

    proptest! {
        /// Any bytes at any place of the start info: a result or a refusal, never a
        /// panic, and whatever is read lies inside the buffer.
        #[test]
        fn never_panics_on_damaged_information(
            damage in proptest::collection::vec((0usize..0x3000, any::<u8>()), 0..64)
        ) {
            let mut memory = qemu_like();
            for (at, byte) in damage {
                memory.bytes[at] = byte;
            }
            if let Ok((map, line, module)) = read_all(&memory) {
                prop_assert!(!map.ram.is_empty());
                prop_assert!(line.is_none_or(|l| l.len() as u64 <= MAX_STRING_BYTES));
                if let Some(module) = module {
                    prop_assert_eq!(module.bytes.len() as u64, module.region.len());
                }
            }
        }
    }
}
