//! The UEFI memory map: read from the buffer `GetMemoryMap` filled, summarised per
//! type for the trace, and turned into the map the kernel gets.
//!
//! The kernel's map describes memory after `ExitBootServices`: boot-services code
//! and data and the loader's own allocations are free RAM then (everything the
//! kernel still reads lies in the loader image, below it), runtime-services memory,
//! MMIO and anything unknown stay reserved, ACPI tables and NVS keep their types.

use alloc::vec::Vec;

use uefi_raw::table::boot::MemoryType;

use crate::error::LoadError;
use crate::le::{u32_at, u64_at};
use crate::memory::Region;
use crate::wire::MapEntry;

/// The fields every descriptor has (type, padding, physical and virtual start,
/// pages, attributes); firmware may make each descriptor longer.
pub const DESCRIPTOR_MIN: usize = 40;
/// The most descriptors the loader reads: OVMF lists about a hundred, and each
/// costs heap and trace bytes.
pub const MAX_DESCRIPTORS: usize = 1024;
const PAGE: u64 = 4096;

/// The kinds of the kernel's map (Multiboot's types, as [`MapEntry`] has them).
pub const KIND_USABLE: u8 = 1;
pub const KIND_RESERVED: u8 = 2;
pub const KIND_ACPI_RECLAIMABLE: u8 = 3;
pub const KIND_ACPI_NVS: u8 = 4;
pub const KIND_DEFECTIVE: u8 = 5;

/// One UEFI memory descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Descriptor {
    /// The UEFI memory type (`EfiConventionalMemory` = 7, ...).
    pub kind: u32,
    pub start: u64,
    pub pages: u64,
}

impl Descriptor {
    /// The physical range, `None` when it passes the end of the address space.
    pub fn region(&self) -> Option<Region> {
        let end = self.pages.checked_mul(PAGE)?.checked_add(self.start)?;
        Some(Region::new(self.start, end))
    }
}

fn unusable(what: &'static str) -> LoadError {
    LoadError::UnusableUefiMemoryMap { what }
}

/// Reads the descriptors from the `size` bytes `GetMemoryMap` wrote into `buffer`,
/// each `descriptor_size` bytes long.
pub fn descriptors(
    buffer: &[u8],
    size: usize,
    descriptor_size: usize,
) -> Result<Vec<Descriptor>, LoadError> {
    if descriptor_size < DESCRIPTOR_MIN || !descriptor_size.is_multiple_of(8) {
        return Err(unusable(
            "the descriptor size is below 40 bytes or not a multiple of 8",
        ));
    }
    let bytes = buffer
        .get(..size)
        .ok_or(unusable("the map is larger than its buffer"))?;
    let count = bytes.len() / descriptor_size;
    if count == 0 {
        return Err(unusable("the map has no descriptor"));
    }
    if count > MAX_DESCRIPTORS {
        return Err(unusable("the map has more than 1024 descriptors"));
    }
    let mut out = Vec::new();
    out.try_reserve_exact(count)
        .map_err(|_| unusable("the map is too large for the loader's heap"))?;
    for raw in bytes.chunks_exact(descriptor_size) {
        let descriptor = Descriptor {
            kind: u32_at(raw, 0),
            start: u64_at(raw, 8),
            pages: u64_at(raw, 24),
        };
        if !descriptor.start.is_multiple_of(PAGE) {
            return Err(unusable("a descriptor starts inside a page"));
        }
        if descriptor.region().is_none() {
            return Err(unusable(
                "a descriptor runs past the end of the address space",
            ));
        }
        out.push(descriptor);
    }
    Ok(out)
}

/// What a UEFI memory type is to the kernel once boot services have exited.
pub fn kind_after_exit(kind: u32) -> u8 {
    match MemoryType(kind) {
        MemoryType::CONVENTIONAL
        | MemoryType::BOOT_SERVICES_CODE
        | MemoryType::BOOT_SERVICES_DATA
        | MemoryType::LOADER_CODE
        | MemoryType::LOADER_DATA => KIND_USABLE,
        MemoryType::ACPI_RECLAIM => KIND_ACPI_RECLAIMABLE,
        MemoryType::ACPI_NON_VOLATILE => KIND_ACPI_NVS,
        MemoryType::UNUSABLE => KIND_DEFECTIVE,
        // Runtime services, MMIO, PAL code, persistent and unaccepted memory,
        // reserved and vendor types: nothing the kernel may allocate.
        _ => KIND_RESERVED,
    }
}

/// The kernel's map: the descriptors' ranges with [`kind_after_exit`] types,
/// sorted, touching ranges of the same kind joined, empty ones left out. Two
/// descriptors that claim the same memory are refused: the map cannot say what is
/// there. O(n log n).
pub fn kernel_map(descriptors: &[Descriptor]) -> Result<Vec<MapEntry>, LoadError> {
    let mut entries: Vec<MapEntry> = Vec::new();
    entries
        .try_reserve_exact(descriptors.len())
        .map_err(|_| unusable("the map is too large for the loader's heap"))?;
    for descriptor in descriptors {
        let region = descriptor.region().ok_or(unusable(
            "a descriptor runs past the end of the address space",
        ))?;
        if !region.is_empty() {
            entries.push(MapEntry {
                start: region.start,
                end: region.end,
                kind: kind_after_exit(descriptor.kind),
            });
        }
    }
    if !entries.is_sorted_by_key(|e| e.start) {
        entries.sort_unstable_by_key(|e| e.start);
    }
    if entries.windows(2).any(|pair| pair[1].start < pair[0].end) {
        return Err(unusable("two descriptors claim the same memory"));
    }
    entries.dedup_by(|next, previous| {
        let joins = next.start == previous.end && next.kind == previous.kind;
        if joins {
            previous.end = next.end;
        }
        joins
    });
    if !entries.iter().any(|e| e.kind == KIND_USABLE) {
        return Err(unusable(
            "the map lists no memory that is usable after ExitBootServices",
        ));
    }
    Ok(entries)
}

/// The usable RAM of a kernel map, for the layout and the device tree.
pub fn usable_ram(map: &[MapEntry]) -> Vec<Region> {
    map.iter()
        .filter(|e| e.kind == KIND_USABLE)
        .map(|e| Region::new(e.start, e.end))
        .collect()
}

/// The descriptors of one UEFI type, as the trace summarises the map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TypeTotal {
    /// The UEFI memory type.
    pub kind: u32,
    /// How many descriptors have it.
    pub descriptors: u32,
    /// Their pages, added up.
    pub pages: u64,
}

/// The map per UEFI type, sorted by type: O(n log n).
pub fn summary(descriptors: &[Descriptor]) -> Vec<TypeTotal> {
    let mut kinds: Vec<(u32, u64)> = descriptors.iter().map(|d| (d.kind, d.pages)).collect();
    kinds.sort_unstable_by_key(|&(kind, _)| kind);
    let mut totals: Vec<TypeTotal> = Vec::new();
    for (kind, pages) in kinds {
        match totals.last_mut() {
            Some(total) if total.kind == kind => {
                total.descriptors += 1;
                total.pages = total.pages.saturating_add(pages);
            }
            _ => totals.push(TypeTotal {
                kind,
                descriptors: 1,
                pages,
            }),
        }
    }
    totals
}

/// The short name of a UEFI memory type, as reports show it.
pub fn type_name(kind: u32) -> &'static str {
    match MemoryType(kind) {
        MemoryType::RESERVED => "reserved",
        MemoryType::LOADER_CODE => "loader code",
        MemoryType::LOADER_DATA => "loader data",
        MemoryType::BOOT_SERVICES_CODE => "boot services code",
        MemoryType::BOOT_SERVICES_DATA => "boot services data",
        MemoryType::RUNTIME_SERVICES_CODE => "runtime services code",
        MemoryType::RUNTIME_SERVICES_DATA => "runtime services data",
        MemoryType::CONVENTIONAL => "conventional",
        MemoryType::UNUSABLE => "unusable",
        MemoryType::ACPI_RECLAIM => "ACPI reclaim",
        MemoryType::ACPI_NON_VOLATILE => "ACPI NVS",
        MemoryType::MMIO => "MMIO",
        MemoryType::MMIO_PORT_SPACE => "MMIO port space",
        MemoryType::PAL_CODE => "PAL code",
        MemoryType::PERSISTENT_MEMORY => "persistent",
        MemoryType::UNACCEPTED => "unaccepted",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `GetMemoryMap` buffer of 48-byte descriptors (OVMF's size).
    fn buffer(descriptors: &[(u32, u64, u64)]) -> Vec<u8> {
        let mut out = Vec::new();
        for &(kind, start, pages) in descriptors {
            let mut raw = [0u8; 48];
            raw[0..4].copy_from_slice(&kind.to_le_bytes());
            raw[8..16].copy_from_slice(&start.to_le_bytes());
            raw[16..24].copy_from_slice(&0xdead_0000u64.to_le_bytes());
            raw[24..32].copy_from_slice(&pages.to_le_bytes());
            raw[32..40].copy_from_slice(&0xfu64.to_le_bytes());
            out.extend_from_slice(&raw);
        }
        out
    }

    /// The start of OVMF's map on q35 with 64 MiB (as seen here), and its MMIO.
    const OVMF: &[(u32, u64, u64)] = &[
        (3, 0x0, 1),
        (7, 0x1000, 0x9f),
        (7, 0x10_0000, 0x700),
        (10, 0x80_0000, 8),
        (7, 0x80_8000, 3),
        (10, 0x80_b000, 1),
        (7, 0x80_c000, 4),
        (10, 0x81_0000, 0xf0),
        (4, 0x90_0000, 0xc20),
        (7, 0x152_0000, 0xded),
        (1, 0x230_d000, 0xe),
        (6, 0x3eb_7000, 0x10),
        (9, 0x3f6_d000, 0x12),
        (0, 0xb000_0000, 0x10000),
    ];

    #[test]
    fn reads_descriptors_of_any_size_the_firmware_uses() {
        let raw = buffer(OVMF);
        let descriptors = descriptors(&raw, raw.len(), 48).unwrap();
        assert_eq!(descriptors.len(), OVMF.len());
        assert_eq!(
            descriptors[1],
            Descriptor {
                kind: 7,
                start: 0x1000,
                pages: 0x9f
            }
        );
        // The buffer may be larger than the map; only `size` bytes count.
        let mut padded = raw.clone();
        padded.extend_from_slice(&[0xff; 96]);
        assert_eq!(
            super::descriptors(&padded, raw.len(), 48).unwrap().len(),
            OVMF.len()
        );
    }

    #[test]
    fn refuses_maps_it_cannot_read() {
        let raw = buffer(OVMF);
        let what = |r: Result<Vec<Descriptor>, LoadError>| match r {
            Err(LoadError::UnusableUefiMemoryMap { what }) => what,
            other => panic!("{other:?}"),
        };
        assert!(what(descriptors(&raw, raw.len(), 32)).contains("below 40"));
        assert!(what(descriptors(&raw, raw.len(), 44)).contains("multiple of 8"));
        assert!(what(descriptors(&raw, raw.len() + 1, 48)).contains("larger than its buffer"));
        assert!(what(descriptors(&raw, 0, 48)).contains("no descriptor"));
        let many = buffer(&[(7, 0, 1); MAX_DESCRIPTORS + 1]);
        assert!(what(descriptors(&many, many.len(), 48)).contains("more than 1024"));
        let inside = buffer(&[(7, 0x1234, 1)]);
        assert!(what(descriptors(&inside, inside.len(), 48)).contains("inside a page"));
        let past = buffer(&[(7, 0xffff_ffff_ffff_f000, 2)]);
        assert!(what(descriptors(&past, past.len(), 48)).contains("end of the address space"));
    }

    #[test]
    fn the_kernel_map_frees_boot_services_and_keeps_the_rest() {
        let raw = buffer(OVMF);
        let map = kernel_map(&descriptors(&raw, raw.len(), 48).unwrap()).unwrap();
        let e = |start, end, kind| MapEntry { start, end, kind };
        assert_eq!(
            map,
            [
                // Page 0 (boot services code) joins the conventional memory after it.
                e(0, 0xa0000, 1),
                e(0x10_0000, 0x80_0000, 1),
                e(0x80_0000, 0x80_8000, 4),
                e(0x80_8000, 0x80_b000, 1),
                e(0x80_b000, 0x80_c000, 4),
                e(0x80_c000, 0x81_0000, 1),
                e(0x81_0000, 0x90_0000, 4),
                // Boot services data, conventional and loader code become one stretch.
                e(0x90_0000, 0x231_b000, 1),
                e(0x3eb_7000, 0x3ec_7000, 2),
                e(0x3f6_d000, 0x3f7_f000, 3),
                e(0xb000_0000, 0xc000_0000, 2),
            ]
        );
        assert_eq!(usable_ram(&map)[1], Region::new(0x10_0000, 0x80_0000));
    }

    #[test]
    fn the_kernel_map_is_sorted_and_refuses_overlaps() {
        let unsorted = [
            Descriptor {
                kind: 7,
                start: 0x10_0000,
                pages: 0x10,
            },
            Descriptor {
                kind: 7,
                start: 0,
                pages: 0x10,
            },
            Descriptor {
                kind: 11,
                start: 0x20_0000,
                pages: 0,
            },
        ];
        let map = kernel_map(&unsorted).unwrap();
        assert_eq!(map.len(), 2, "sorted, the empty MMIO entry left out");
        assert_eq!(map[0].start, 0);
        let overlapping = [
            Descriptor {
                kind: 7,
                start: 0,
                pages: 0x10,
            },
            Descriptor {
                kind: 4,
                start: 0x8000,
                pages: 0x10,
            },
        ];
        assert_eq!(
            kernel_map(&overlapping),
            Err(LoadError::UnusableUefiMemoryMap {
                what: "two descriptors claim the same memory"
            })
        );
        let nothing_usable = [Descriptor {
            kind: 5,
            start: 0,
            pages: 1,
        }];
        assert!(kernel_map(&nothing_usable).is_err());
    }

    #[test]
    fn every_uefi_type_has_a_kernel_kind() {
        let usable = [1, 2, 3, 4, 7];
        for kind in 0..20 {
            let expected = match kind {
                k if usable.contains(&k) => 1,
                8 => 5,
                9 => 3,
                10 => 4,
                _ => 2,
            };
            assert_eq!(kind_after_exit(kind), expected, "type {kind}");
        }
        assert_eq!(kind_after_exit(0x8000_0001), 2, "an OS loader's own type");
        assert_eq!(type_name(7), "conventional");
        assert_eq!(type_name(0x7000_0000), "other");
    }

    #[test]
    fn summarises_per_type() {
        let raw = buffer(OVMF);
        let totals = summary(&descriptors(&raw, raw.len(), 48).unwrap());
        let conventional = totals.iter().find(|t| t.kind == 7).unwrap();
        assert_eq!(conventional.descriptors, 5);
        assert_eq!(conventional.pages, 0x9f + 0x700 + 3 + 4 + 0xded);
        assert!(totals.windows(2).all(|p| p[0].kind < p[1].kind));
        assert_eq!(
            totals.iter().map(|t| t.descriptors).sum::<u32>(),
            OVMF.len() as u32
        );
    }

    proptest::proptest! {
        /// Any buffer the firmware could write is read or refused, never a panic,
        /// and a map that is read gives a sorted kernel map without overlaps.
        #[test]
        fn any_map_is_read_or_refused(
            raw in proptest::collection::vec(proptest::num::u8::ANY, 0..2048),
            size in 0usize..2100,
            descriptor_size in 0usize..100,
        ) {
            if let Ok(descriptors) = descriptors(&raw, size, descriptor_size) {
                let _ = summary(&descriptors);
                if let Ok(map) = kernel_map(&descriptors) {
                    proptest::prop_assert!(map.windows(2).all(|p| p[0].end <= p[1].start));
                }
            }
        }
    }
}
