//! Reading the Multiboot 1 information (MBI) that QEMU hands the loader: the memory
//! map, the command line and module 0 (the application), without trusting any
//! pointer or length in it.
//!
//! The binary reaches physical memory through [`PhysicalMemory`], which forms the
//! slices; this module decides every range it asks for first. Fields are read from
//! bytes (nothing in the MBI has to be aligned), every sum is checked, every string
//! is searched for its end within usable RAM and a named limit, and the memory map
//! is walked within its stated length. So a hostile or truncated MBI is refused with
//! one line, never a panic, a wild read or a long scan. What QEMU leaves outside
//! usable RAM (it does so when `-m` is too small to hold the boot data after the
//! loader) is refused as `not-enough-memory`.

use alloc::vec::Vec;

use crate::error::LoadError;
use crate::le::{u32_at, u64_at};
use crate::memory::{MemoryMap, PhysicalMemory, Region};
use crate::wire::MapEntry;
use crate::Module;

/// The size of the Multiboot 1 information structure.
pub const MBI_SIZE: u64 = 116;
/// The bytes of it the loader reads: the flags up to the memory map's address.
const MBI_READ: u64 = 52;
/// The most memory-map bytes the loader reads (2730 entries of 24 bytes; QEMU's
/// maps have fewer than ten).
pub const MAX_MEMORY_MAP_BYTES: u64 = 64 * 1024;
/// The longest command line or module string the loader reads, without its NUL.
pub const MAX_STRING_BYTES: u64 = 64 * 1024;
/// The size of a module-list entry: start, end, string, reserved.
const MODULE_ENTRY: u64 = 16;
/// The smallest memory-map entry after its `size` field: base, length, type.
const MAP_ENTRY_MIN: u32 = 20;

/// The MBI `flags` bits the loader reads.
const FLAG_COMMAND_LINE: u32 = 1 << 2;
const FLAG_MODULES: u32 = 1 << 3;
const FLAG_MEMORY_MAP: u32 = 1 << 6;

/// The fixed part of the MBI, read once.
pub struct Mbi<'a, M> {
    memory: &'a M,
    address: u64,
    flags: u32,
    command_line: u32,
    module_count: u32,
    module_list: u32,
    map_length: u32,
    map_address: u32,
}

fn bad(what: &'static str) -> LoadError {
    LoadError::BadMultiboot { what }
}

/// Whether `[start, end)` lies in usable RAM. `ram` is sorted and merged.
pub(crate) fn in_ram(ram: &[Region], start: u64, end: u64) -> bool {
    let wanted = Region::new(start, end);
    ram.iter()
        .any(|r| r.contains_range(&wanted) && start < r.end)
}

impl<'a, 'm, M: PhysicalMemory<'m>> Mbi<'a, M> {
    /// Reads the fixed part of the MBI at `address` (from EBX at the Multiboot
    /// entry).
    pub fn read(address: u64, memory: &'a M) -> Result<Self, LoadError> {
        let bytes = memory
            .bytes(address, MBI_READ)
            .filter(|b| b.len() as u64 == MBI_READ)
            .ok_or(bad("the MBI address is not in mapped memory"))?;
        Ok(Mbi {
            memory,
            address,
            flags: u32_at(bytes, 0),
            command_line: u32_at(bytes, 16),
            module_count: u32_at(bytes, 20),
            module_list: u32_at(bytes, 24),
            map_length: u32_at(bytes, 44),
            map_address: u32_at(bytes, 48),
        })
    }

    /// The memory map: every entry, and the usable RAM in it. Refuses a map that is
    /// missing, larger than [`MAX_MEMORY_MAP_BYTES`], unreadable, with an entry that
    /// runs past its end, or without usable RAM.
    pub fn memory_map(&self) -> Result<MemoryMap, LoadError> {
        if self.flags & FLAG_MEMORY_MAP == 0 {
            return Err(bad("no memory map (flags bit 6 clear)"));
        }
        let length = u64::from(self.map_length);
        if length > MAX_MEMORY_MAP_BYTES {
            return Err(bad("the memory map is longer than 64 KiB"));
        }
        let start = u64::from(self.map_address);
        let map = self
            .memory
            .bytes(start, length)
            .filter(|b| b.len() as u64 == length)
            .ok_or(bad("the memory map is not in mapped memory"))?;
        // An allocation failure on bare metal is a panic: a map too large for the
        // heap is a refusal instead.
        let too_large = |_| bad("the memory map is too large for the loader's heap");
        let mut entries = Vec::new();
        let mut ram = Vec::new();
        let mut offset = 0usize;
        while offset < map.len() {
            let rest = &map[offset..];
            if rest.len() < 4 {
                return Err(bad("the memory map ends inside an entry"));
            }
            let size = u32_at(rest, 0);
            if size < MAP_ENTRY_MIN {
                return Err(bad("a memory-map entry is shorter than 20 bytes"));
            }
            // At most 64 KiB: the sum cannot overflow.
            let entry_len = 4 + size as usize;
            if entry_len > rest.len() {
                return Err(bad("a memory-map entry runs past the end of the map"));
            }
            let base = u64_at(rest, 4);
            let end = base.saturating_add(u64_at(rest, 12));
            let kind = match u32_at(rest, 20) {
                kind @ 1..=5 => kind as u8,
                // The Multiboot specification: any other type is reserved.
                _ => 2,
            };
            entries.try_reserve(1).map_err(too_large)?;
            entries.push(MapEntry {
                start: base,
                end,
                kind,
            });
            if kind == 1 && end > base {
                ram.try_reserve(1).map_err(too_large)?;
                ram.push(Region::new(base, end));
            }
            offset += entry_len;
        }
        if ram.is_empty() {
            return Err(bad("the memory map lists no usable RAM"));
        }
        Ok(MemoryMap { entries, ram })
    }

    /// Where the MBI and its memory map lie, together.
    pub fn region(&self) -> Region {
        let map = u64::from(self.map_address);
        Region::new(
            self.address.min(map),
            (self.address + MBI_SIZE).max(map + u64::from(self.map_length)),
        )
    }

    /// The command line, if the MBI has one; `ram` is [`merged_ram`](crate::memory::merged_ram) of the map.
    /// Returns it with the range it occupies (its NUL included).
    pub fn command_line(&self, ram: &[Region]) -> Result<Option<(&'m str, Region)>, LoadError> {
        if self.flags & FLAG_COMMAND_LINE == 0 || self.command_line == 0 {
            return Ok(None);
        }
        let (line, region) = self.string(
            u64::from(self.command_line),
            ram,
            "the command line",
            "the command line has no end (NUL) in usable RAM within 64 KiB",
            "the command line is not UTF-8",
        )?;
        Ok(Some((line, region)))
    }

    /// Module 0 (the application), if the MBI lists modules; `ram` is
    /// [`merged_ram`](crate::memory::merged_ram) of the map.
    pub fn module(&self, ram: &[Region]) -> Result<Option<Module<'m>>, LoadError> {
        if self.flags & FLAG_MODULES == 0 || self.module_count == 0 {
            return Ok(None);
        }
        let list = u64::from(self.module_list);
        if !in_ram(ram, list, list + MODULE_ENTRY) {
            return Err(LoadError::NotEnoughMemory {
                what: "the module list",
                start: list,
                end: list + MODULE_ENTRY,
            });
        }
        let entry = self
            .memory
            .bytes(list, MODULE_ENTRY)
            .filter(|b| b.len() as u64 == MODULE_ENTRY)
            .ok_or(bad("the module list is not in mapped memory"))?;
        let start = u64::from(u32_at(entry, 0));
        let end = u64::from(u32_at(entry, 4));
        let string = u64::from(u32_at(entry, 8));
        if end < start {
            return Err(bad("module 0 ends before it starts"));
        }
        if start == end {
            return Err(LoadError::EmptyModule);
        }
        if !in_ram(ram, start, end) {
            return Err(LoadError::NotEnoughMemory {
                what: "module 0 (the application)",
                start,
                end,
            });
        }
        let bytes = self
            .memory
            .bytes(start, end - start)
            .filter(|b| b.len() as u64 == end - start)
            .ok_or(bad("module 0 is not in mapped memory"))?;
        let (string, string_region) = if string == 0 {
            (None, None)
        } else {
            let (text, region) = self.string(
                string,
                ram,
                "module 0's string",
                "module 0's string has no end (NUL) in usable RAM within 64 KiB",
                "module 0's string is not UTF-8",
            )?;
            (Some(text), Some(region))
        };
        Ok(Some(Module {
            region: Region::new(start, end),
            bytes,
            string,
            string_region,
        }))
    }

    /// A NUL-terminated string at `address`, searched for its end only within the
    /// usable RAM region it starts in and [`MAX_STRING_BYTES`].
    fn string(
        &self,
        address: u64,
        ram: &[Region],
        what: &'static str,
        unterminated: &'static str,
        not_utf8: &'static str,
    ) -> Result<(&'m str, Region), LoadError> {
        let region = ram
            .iter()
            .find(|r| r.start <= address && address < r.end)
            .ok_or(LoadError::NotEnoughMemory {
                what,
                start: address,
                end: address.saturating_add(1),
            })?;
        // The NUL may be the byte just past the longest string.
        let limit = region.end.min(address.saturating_add(MAX_STRING_BYTES + 1));
        let bytes = self
            .memory
            .bytes(address, limit - address)
            .filter(|b| b.len() as u64 == limit - address)
            .ok_or(bad("a string of the MBI is not in mapped memory"))?;
        let text = nul_terminated(bytes, unterminated, not_utf8).map_err(bad)?;
        Ok((text, Region::new(address, address + text.len() as u64 + 1)))
    }
}

/// The UTF-8 text before the first NUL of `bytes` (boot data's C strings), or the
/// message that says why there is none. Inlined: the Multiboot path runs under the
/// instruction budget (`xtask/tests/budget.rs`), and a call costs it more than this.
#[inline]
pub(crate) fn nul_terminated<'m>(
    bytes: &'m [u8],
    unterminated: &'static str,
    not_utf8: &'static str,
) -> Result<&'m str, &'static str> {
    let length = bytes.iter().position(|&b| b == 0).ok_or(unterminated)?;
    core::str::from_utf8(&bytes[..length]).map_err(|_| not_utf8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::merged_ram;
    use crate::test_memory::{put32, put64, put_bytes, Buffer};
    use proptest::prelude::*;

    const BASE: u64 = 0x1000;
    const MBI: u64 = 0x1000;
    const MAP: u64 = 0x1100;
    const CMDLINE: u64 = 0x1200;
    const MODULES: u64 = 0x1300;
    const MODULE_STRING: u64 = 0x1400;
    const MODULE: u64 = 0x2700;

    /// A memory-map entry at `at`: size 20, then base, length, type.
    fn put_entry(memory: &mut Buffer, at: u64, base: u64, length: u64, kind: u32) {
        put32(memory, at, 20);
        put64(memory, at + 4, base);
        put64(memory, at + 12, length);
        put32(memory, at + 20, kind);
    }

    /// An MBI as QEMU builds it: a map with low and high RAM covering the whole
    /// buffer, a command line, and one module with its string.
    fn qemu_like() -> Buffer {
        let mut memory = Buffer {
            base: BASE,
            bytes: vec![0; 0x3000],
        };
        put32(
            &mut memory,
            MBI,
            FLAG_COMMAND_LINE | FLAG_MODULES | FLAG_MEMORY_MAP,
        );
        put32(&mut memory, MBI + 16, CMDLINE as u32);
        put32(&mut memory, MBI + 20, 1);
        put32(&mut memory, MBI + 24, MODULES as u32);
        put32(&mut memory, MBI + 44, 3 * 24);
        put32(&mut memory, MBI + 48, MAP as u32);
        put_entry(&mut memory, MAP, BASE, 0x1800, 1);
        put_entry(&mut memory, MAP + 24, BASE + 0x1800, 0x1800, 1);
        put_entry(&mut memory, MAP + 48, 0xfffc_0000, 0x4_0000, 2);
        put_bytes(&mut memory, CMDLINE, b"rusty-loader -freq 2800 -- app\0");
        put32(&mut memory, MODULES, MODULE as u32);
        put32(&mut memory, MODULES + 4, MODULE as u32 + 0x200);
        put32(&mut memory, MODULES + 8, MODULE_STRING as u32);
        put_bytes(&mut memory, MODULE_STRING, b"app.elf keep-cmdline\0");
        put_bytes(&mut memory, MODULE, b"\x7fELF");
        memory
    }

    /// Everything the loader reads, or the first refusal.
    fn read_all(
        memory: &Buffer,
    ) -> Result<(MemoryMap, Option<&str>, Option<Module<'_>>), LoadError> {
        let mbi = Mbi::read(MBI, &memory)?;
        let map = mbi.memory_map()?;
        let ram = merged_ram(&map.ram)?;
        let line = mbi.command_line(&ram)?.map(|(line, _)| line);
        let module = mbi.module(&ram)?;
        Ok((map, line, module))
    }

    #[test]
    fn reads_what_qemu_hands_over() {
        let memory = qemu_like();
        let (map, line, module) = read_all(&memory).unwrap();
        assert_eq!(
            Mbi::read(MBI, &&memory).unwrap().region(),
            Region::new(MBI, MAP + 72)
        );
        assert_eq!(map.entries.len(), 3);
        assert_eq!(
            map.entries[2],
            MapEntry {
                start: 0xfffc_0000,
                end: 0x1_0000_0000,
                kind: 2
            }
        );
        assert_eq!(
            map.ram,
            [
                Region::new(BASE, BASE + 0x1800),
                Region::new(BASE + 0x1800, BASE + 0x3000)
            ]
        );
        assert_eq!(line, Some("rusty-loader -freq 2800 -- app"));
        let module = module.unwrap();
        // The module straddles the two adjacent RAM entries: still in RAM.
        assert_eq!(module.region, Region::new(MODULE, MODULE + 0x200));
        assert_eq!(&module.bytes[..4], b"\x7fELF");
        assert_eq!(module.string, Some("app.elf keep-cmdline"));
        assert_eq!(
            module.string_region,
            Some(Region::new(MODULE_STRING, MODULE_STRING + 21))
        );
    }

    #[test]
    fn absent_parts_are_none_and_a_missing_map_is_refused() {
        let mut memory = qemu_like();
        put32(&mut memory, MBI, FLAG_MEMORY_MAP);
        let (_, line, module) = read_all(&memory).unwrap();
        assert_eq!((line, module), (None, None));
        put32(&mut memory, MBI, FLAG_MEMORY_MAP | FLAG_MODULES);
        put32(&mut memory, MBI + 20, 0);
        assert_eq!(read_all(&memory).unwrap().2, None);
        put32(&mut memory, MBI, 0);
        assert_eq!(
            read_all(&memory).unwrap_err(),
            bad("no memory map (flags bit 6 clear)")
        );
    }

    #[test]
    fn boot_data_beyond_ram_is_not_enough_memory() {
        // What QEMU does when -m is too small: it puts the boot data after the loader,
        // past the end of RAM. Here the map's RAM ends at 0x2800.
        let mut memory = qemu_like();
        put32(&mut memory, MBI + 44, 24);
        let error = read_all(&memory).unwrap_err();
        assert_eq!(
            error,
            LoadError::NotEnoughMemory {
                what: "module 0 (the application)",
                start: MODULE,
                end: MODULE + 0x200
            }
        );
        assert_eq!(error.exit_code(), crate::error::ExitCode::NotEnoughMemory);
        put32(&mut memory, MBI + 16, 0x2800);
        assert_eq!(
            read_all(&memory).unwrap_err(),
            LoadError::NotEnoughMemory {
                what: "the command line",
                start: 0x2800,
                end: 0x2801
            }
        );
        put32(&mut memory, MBI, FLAG_MODULES | FLAG_MEMORY_MAP);
        put32(&mut memory, MBI + 24, 0x2ff8);
        assert!(matches!(
            read_all(&memory).unwrap_err(),
            LoadError::NotEnoughMemory {
                what: "the module list",
                ..
            }
        ));
    }

    #[test]
    fn impossible_modules_are_refused() {
        let mut memory = qemu_like();
        put32(&mut memory, MODULES + 4, MODULE as u32);
        assert_eq!(read_all(&memory).unwrap_err(), LoadError::EmptyModule);
        assert_eq!(
            LoadError::EmptyModule.to_string(),
            "the module is empty (0 bytes): -initrd names an empty file"
        );
        put32(&mut memory, MODULES + 4, MODULE as u32 - 1);
        assert_eq!(
            read_all(&memory).unwrap_err(),
            bad("module 0 ends before it starts")
        );
        // A module at address 0 (what a truncated MBI reads as) is not in RAM.
        put32(&mut memory, MODULES, 0);
        put32(&mut memory, MODULES + 4, 0x100);
        assert!(matches!(
            read_all(&memory).unwrap_err(),
            LoadError::NotEnoughMemory { start: 0, .. }
        ));
    }

    #[test]
    fn strings_are_bounded_and_checked() {
        let mut memory = qemu_like();
        // No NUL before the end of RAM.
        let end = memory.bytes.len();
        memory.bytes[(CMDLINE - BASE) as usize..end].fill(b'a');
        assert_eq!(
            read_all(&memory).unwrap_err(),
            bad("the command line has no end (NUL) in usable RAM within 64 KiB")
        );
        let mut memory = qemu_like();
        put_bytes(&mut memory, CMDLINE, b"\xff\xfe\0");
        assert_eq!(
            read_all(&memory).unwrap_err(),
            bad("the command line is not UTF-8")
        );
        let mut memory = qemu_like();
        put_bytes(&mut memory, MODULE_STRING, b"\xc3\0");
        assert_eq!(
            read_all(&memory).unwrap_err(),
            bad("module 0's string is not UTF-8")
        );
    }

    #[test]
    fn a_long_string_is_read_up_to_the_limit() {
        let length = MAX_STRING_BYTES as usize;
        let mut memory = Buffer {
            base: BASE,
            bytes: vec![b'x'; 0x1000 + length + 2],
        };
        let size = memory.bytes.len() as u64;
        put32(&mut memory, MBI, FLAG_COMMAND_LINE | FLAG_MEMORY_MAP);
        put32(&mut memory, MBI + 16, CMDLINE as u32);
        put32(&mut memory, MBI + 44, 24);
        put32(&mut memory, MBI + 48, MAP as u32);
        put_entry(&mut memory, MAP, BASE, size, 1);
        let nul = CMDLINE as usize - BASE as usize + length;
        memory.bytes[nul] = 0;
        assert_eq!(read_all(&memory).unwrap().1.map(str::len), Some(length));
        memory.bytes[nul] = b'x';
        memory.bytes[nul + 1] = 0;
        assert_eq!(
            read_all(&memory).unwrap_err(),
            bad("the command line has no end (NUL) in usable RAM within 64 KiB")
        );
    }

    #[test]
    fn broken_memory_maps_are_refused() {
        /// A change to a good MBI, and the refusal it causes.
        type Case<'a> = (&'a dyn Fn(&mut Buffer), &'a str);
        let cases: [Case; 5] = [
            (
                &|m| put32(m, MBI + 44, 0x10001),
                "the memory map is longer than 64 KiB",
            ),
            (
                &|m| put32(m, MBI + 48, 0x3ff0),
                "the memory map is not in mapped memory",
            ),
            (
                &|m| put32(m, MAP + 24, 8),
                "a memory-map entry is shorter than 20 bytes",
            ),
            (
                &|m| put32(m, MAP + 48, 0xffff_fff0),
                "a memory-map entry runs past the end of the map",
            ),
            (
                &|m| put32(m, MBI + 44, 3 * 24 + 2),
                "the memory map ends inside an entry",
            ),
        ];
        for (damage, why) in cases {
            let mut memory = qemu_like();
            damage(&mut memory);
            assert_eq!(read_all(&memory).unwrap_err(), bad(why), "{why}");
        }
        let mut memory = qemu_like();
        for at in [MAP, MAP + 24] {
            put32(&mut memory, at + 20, 2);
        }
        assert_eq!(
            read_all(&memory).unwrap_err(),
            bad("the memory map lists no usable RAM")
        );
        assert_eq!(
            Mbi::read(0x3ff0, &&memory).err(),
            Some(bad("the MBI address is not in mapped memory"))
        );
    }

    #[test]
    fn ram_is_merged_across_touching_entries_only() {
        let ram = merged_ram(&[
            Region::new(0x3000, 0x4000),
            Region::new(0, 0x1000),
            Region::new(0x1000, 0x2000),
            Region::new(0x5000, 0x5000),
        ])
        .unwrap();
        assert_eq!(ram, [Region::new(0, 0x2000), Region::new(0x3000, 0x4000)]);
        assert!(in_ram(&ram, 0x800, 0x1800));
        assert!(!in_ram(&ram, 0x1800, 0x3800));
        assert!(!in_ram(&ram, 0x4000, 0x4000));
    }

    proptest! {
        /// Any bytes at any place of the MBI: a result or a refusal, never a panic,
        /// and whatever is read lies inside the buffer.
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
