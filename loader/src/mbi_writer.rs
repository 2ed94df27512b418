//! Writing a Multiboot 1 information structure (MBI) for the kernel when the loader
//! was not entered through Multiboot (PVH).
//!
//! Every boot info the loader hands over says "Multiboot" (platform tag 0) and
//! points at an MBI: kernels 0.6–0.10 read their memory map and command line from
//! it, and the boot-info layout of every entry version has the field. Under PVH there
//! is no firmware MBI, so the loader writes one from the start info: the fixed part
//! with the lower and upper memory sizes, the memory map (every entry of the PVH map,
//! Multiboot types), and a copy of the command line, all in one buffer that the
//! binary places on its heap inside the loader image (mapped, below the kernel, kept).
//!
//! The writer is pure: it gets the buffer and the buffer's physical address, and
//! refuses what 32-bit Multiboot pointers cannot express.

use crate::error::LoadError;
use crate::multiboot::MBI_SIZE;
use crate::wire::MapEntry;

/// The size of one memory-map entry as written: the `size` field, then base, length
/// and type (`size` counts the 20 bytes after it).
const MAP_ENTRY: usize = 24;

/// The MBI `flags` bits the loader writes: memory sizes, command line, memory map.
const FLAG_MEMORY: u32 = 1 << 0;
const FLAG_COMMAND_LINE: u32 = 1 << 2;
const FLAG_MEMORY_MAP: u32 = 1 << 6;

/// Where the parts of a written MBI lie, as physical addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WrittenMbi {
    /// The MBI itself (the buffer's start).
    pub mbi: u64,
    /// The NUL-terminated command line copied into the buffer.
    pub command_line: u64,
}

/// The bytes an MBI with `entries` map entries and `command_line` needs.
pub const fn mbi_size(entries: usize, command_line: &str) -> usize {
    MBI_SIZE as usize + entries * MAP_ENTRY + command_line.len() + 1
}

fn put32(buffer: &mut [u8], at: usize, value: u32) {
    buffer[at..at + 4].copy_from_slice(&value.to_le_bytes());
}

fn put64(buffer: &mut [u8], at: usize, value: u64) {
    buffer[at..at + 8].copy_from_slice(&value.to_le_bytes());
}

/// KiB of RAM in the entry of `map` that starts at `start`, capped at `cap` KiB:
/// the Multiboot `mem_lower` (from 0, at most 640) and `mem_upper` (from 1 MiB).
fn kib_from(map: &[MapEntry], start: u64, cap: u64) -> u32 {
    let kib = map
        .iter()
        .filter(|e| e.kind == 1 && e.start == start && e.end > e.start)
        .map(|e| (e.end - e.start) / 1024)
        .max()
        .unwrap_or(0);
    kib.min(cap) as u32
}

/// Writes the MBI into `buffer` (of [`mbi_size`] bytes, at physical address
/// `address`): the fixed part, then the memory map, then the command line.
pub fn write_mbi(
    buffer: &mut [u8],
    address: u64,
    map: &[MapEntry],
    command_line: &str,
) -> Result<WrittenMbi, LoadError> {
    let size = mbi_size(map.len(), command_line);
    let too_high = LoadError::BadMapping {
        what: "the MBI for the kernel must lie below 4 GiB (its pointers are 32-bit)",
        start: address,
        end: address.saturating_add(size as u64),
    };
    if buffer.len() != size {
        return Err(LoadError::BadMapping {
            what: "the MBI buffer has the wrong size",
            start: address,
            end: address.saturating_add(buffer.len() as u64),
        });
    }
    let end = address.checked_add(size as u64).ok_or(too_high.clone())?;
    if end > 1 << 32 {
        return Err(too_high);
    }
    let map_at = MBI_SIZE as usize;
    let map_length = map.len() * MAP_ENTRY;
    let line_at = map_at + map_length;
    // Below 4 GiB, as checked: every address fits a u32.
    let physical = |offset: usize| (address + offset as u64) as u32;

    buffer.fill(0);
    put32(buffer, 0, FLAG_MEMORY | FLAG_COMMAND_LINE | FLAG_MEMORY_MAP);
    put32(buffer, 4, kib_from(map, 0, 640));
    // mem_upper is a u32 of KiB: 4 TiB, more than the loader reaches anyway.
    put32(buffer, 8, kib_from(map, 0x10_0000, u64::from(u32::MAX)));
    put32(buffer, 16, physical(line_at));
    put32(buffer, 44, map_length as u32);
    put32(buffer, 48, physical(map_at));
    for (index, entry) in map.iter().enumerate() {
        let at = map_at + index * MAP_ENTRY;
        put32(buffer, at, (MAP_ENTRY - 4) as u32);
        put64(buffer, at + 4, entry.start);
        put64(buffer, at + 12, entry.end - entry.start);
        put32(buffer, at + 20, u32::from(entry.kind));
    }
    buffer[line_at..line_at + command_line.len()].copy_from_slice(command_line.as_bytes());
    Ok(WrittenMbi {
        mbi: address,
        command_line: u64::from(physical(line_at)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::{merged_ram, PhysicalMemory, Region};
    use crate::multiboot::Mbi;

    /// A buffer at a physical address, for reading the written MBI back.
    struct Placed<'a> {
        base: u64,
        bytes: &'a [u8],
    }

    impl<'m> PhysicalMemory<'m> for Placed<'m> {
        fn bytes(&self, addr: u64, len: u64) -> Option<&'m [u8]> {
            let from = addr.checked_sub(self.base)? as usize;
            self.bytes.get(from..from.checked_add(len as usize)?)
        }
    }

    /// A PVH map as QEMU's pc machine gives it with 64 MiB.
    const MAP: [MapEntry; 4] = [
        MapEntry {
            start: 0,
            end: 0x9_fc00,
            kind: 1,
        },
        MapEntry {
            start: 0x9_fc00,
            end: 0xa_0000,
            kind: 2,
        },
        MapEntry {
            start: 0x10_0000,
            end: 0x3fe_0000,
            kind: 1,
        },
        MapEntry {
            start: 0xfffc_0000,
            end: 0x1_0000_0000,
            kind: 2,
        },
    ];

    #[test]
    fn the_multiboot_reader_reads_back_what_was_written() {
        let line = "-freq 2800 -- app";
        let base = 0x20_0000;
        let mut buffer = vec![0xaa; mbi_size(MAP.len(), line)];
        let written = write_mbi(&mut buffer, base, &MAP, line).unwrap();
        assert_eq!(written.mbi, base);
        let memory = Placed {
            base,
            bytes: &buffer,
        };
        let mbi = Mbi::read(base, &memory).unwrap();
        let map = mbi.memory_map().unwrap();
        assert_eq!(map.entries, MAP);
        assert_eq!(
            map.ram,
            [Region::new(0, 0x9_fc00), Region::new(0x10_0000, 0x3fe_0000)]
        );
        // The command line lies in the buffer, which the test counts as RAM.
        let ram = merged_ram(&[Region::new(base, base + buffer.len() as u64)]).unwrap();
        let (read_line, region) = mbi.command_line(&ram).unwrap().unwrap();
        assert_eq!(read_line, line);
        assert_eq!(region.start, written.command_line);
        assert_eq!(region.end, base + buffer.len() as u64);
        // mem_lower and mem_upper in KiB.
        assert_eq!(u32::from_le_bytes(buffer[4..8].try_into().unwrap()), 639);
        assert_eq!(
            u32::from_le_bytes(buffer[8..12].try_into().unwrap()),
            (0x3fe_0000 - 0x10_0000) / 1024
        );
        // No modules: the kernel's own file is no business of the kernel's.
        assert_eq!(mbi.module(&ram).unwrap(), None);
    }

    #[test]
    fn an_empty_command_line_is_written_as_an_empty_string() {
        let mut buffer = vec![0; mbi_size(1, "")];
        let written = write_mbi(&mut buffer, 0x1000, &MAP[..1], "").unwrap();
        assert_eq!(written.command_line, 0x1000 + MBI_SIZE + 24);
        assert_eq!(buffer.last(), Some(&0));
    }

    #[test]
    fn addresses_beyond_32_bits_and_wrong_sizes_are_refused() {
        let mut buffer = vec![0; mbi_size(MAP.len(), "x")];
        assert!(matches!(
            write_mbi(&mut buffer, 0xffff_ff80, &MAP, "x"),
            Err(LoadError::BadMapping { what, .. }) if what.contains("below 4 GiB")
        ));
        assert!(write_mbi(&mut buffer, u64::MAX - 8, &MAP, "x").is_err());
        assert!(matches!(
            write_mbi(&mut buffer, 0x1000, &MAP, "xy"),
            Err(LoadError::BadMapping { what, .. }) if what.contains("wrong size")
        ));
    }
}
