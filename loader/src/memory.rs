//! Physical memory as the loader speaks of it: address ranges ([`Region`]), the
//! usable RAM of a memory map merged into sorted, disjoint stretches
//! ([`merged_ram`], asked with `UsableRam`), and how the binary reaches physical
//! memory ([`PhysicalMemory`]). The boot-data readers (`multiboot`, `pvh`) and the
//! layout planning (`layout`) are written in these words.

use alloc::vec::Vec;

use crate::error::LoadError;
use crate::wire::MapEntry;

/// A physical address range `[start, end)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    /// The first address in the range.
    pub start: u64,
    /// The first address after the range.
    pub end: u64,
}

impl Region {
    /// The range `[start, end)`.
    pub const fn new(start: u64, end: u64) -> Self {
        Region { start, end }
    }

    /// The length in bytes (0 for an empty or inverted range).
    pub const fn len(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }

    /// Whether the range holds no byte.
    pub const fn is_empty(&self) -> bool {
        self.start >= self.end
    }

    /// Whether the two ranges share at least one byte.
    pub const fn overlaps(&self, other: &Region) -> bool {
        !self.is_empty() && !other.is_empty() && self.start < other.end && other.start < self.end
    }

    /// Whether `other` lies entirely inside `self` (an empty `other` counts if its
    /// start lies inside or at the end of `self`).
    pub const fn contains_range(&self, other: &Region) -> bool {
        self.start <= other.start && other.start <= other.end && other.end <= self.end
    }
}

/// A memory map, as the firmware gave it and as the loader uses it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemoryMap {
    /// Every entry, in map order (for the trace and the MBI the loader builds).
    pub entries: Vec<MapEntry>,
    /// Usable RAM (type 1, not empty), in map order.
    pub ram: Vec<Region>,
}

/// Physical memory as the loader binary reaches it (identity-mapped on bare metal, a
/// buffer in the tests).
pub trait PhysicalMemory<'m> {
    /// The `len` bytes at physical address `addr`, or `None` when the range cannot be
    /// read at all (it starts at 0, wraps, or lies beyond the mapped memory).
    fn bytes(&self, addr: u64, len: u64) -> Option<&'m [u8]>;
}

/// The usable RAM regions sorted by address, those that overlap or touch merged
/// (firmware may split one stretch of RAM into several entries), so that a range
/// across two adjacent map entries still counts as in RAM: O(n log n) for n entries.
/// The one merge of the memory map, for the layout and for the boot-data readers.
pub fn merged_ram(ram: &[Region]) -> Result<Vec<Region>, LoadError> {
    let mut stretches: Vec<Region> = Vec::new();
    // The loader's heap is small and an allocation failure on bare metal is a
    // panic, so a map too large to copy is a refusal.
    stretches
        .try_reserve_exact(ram.len())
        .map_err(|_| LoadError::BadMultiboot {
            what: "the memory map is too large for the loader's heap",
        })?;
    stretches.extend(ram.iter().filter(|region| !region.is_empty()));
    // Firmware lists its map in order; the sort runs only when it did not.
    if !stretches.is_sorted_by_key(|region| region.start) {
        stretches.sort_unstable_by_key(|region| region.start);
    }
    // Sorted by start, an entry that overlaps or touches the stretch before it
    // extends that stretch.
    stretches.dedup_by(|next, stretch| {
        let joins = next.start <= stretch.end;
        if joins {
            stretch.end = stretch.end.max(next.end);
        }
        joins
    });
    Ok(stretches)
}

/// Usable RAM as sorted, disjoint stretches: memory-map entries that overlap or touch
/// are merged, since firmware may split one stretch of RAM into several entries.
///
/// Whether a range lies in RAM is then one binary search. Walking the map entry by
/// entry instead costs entries² steps on a map of touching entries in descending
/// order, and the map is the firmware's, of any length.
pub(crate) struct UsableRam {
    stretches: Vec<Region>,
}

impl UsableRam {
    /// Sorts and merges `ram` ([`merged_ram`]).
    pub(crate) fn new(ram: &[Region]) -> Result<Self, LoadError> {
        Ok(UsableRam {
            stretches: merged_ram(ram)?,
        })
    }

    /// The stretches, sorted by address.
    pub(crate) fn stretches(&self) -> &[Region] {
        &self.stretches
    }

    /// Whether `region` lies in usable RAM: O(log n).
    pub(crate) fn contains(&self, region: &Region) -> bool {
        if region.is_empty() {
            return true;
        }
        // Stretches are disjoint and do not touch, so only the last one starting at or
        // below the region's start can hold it.
        let starting_below = self
            .stretches
            .partition_point(|stretch| stretch.start <= region.start);
        starting_below
            .checked_sub(1)
            .and_then(|index| self.stretches.get(index))
            .is_some_and(|stretch| stretch.contains_range(region))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    const PAGE: u64 = 0x1000;
    const ONE_MIB: u64 = 0x10_0000;
    /// Conventional memory up to the EBDA, as QEMU's map has it.
    const CONVENTIONAL: Region = Region::new(0, 0x9_fc00);
    const PAGES: u64 = 1 << 16;

    /// 65 536 touching 4 KiB entries (256 MiB from 1 MiB) in descending order, then
    /// conventional memory (where QEMU puts the MBI): the worst case for a walk entry
    /// by entry, 65 536 hops each searching the map.
    pub(crate) fn touching_pages_in_descending_order() -> Vec<Region> {
        let mut ram: Vec<Region> = (0..PAGES)
            .rev()
            .map(|page| Region::new(ONE_MIB + page * PAGE, ONE_MIB + (page + 1) * PAGE))
            .collect();
        ram.push(CONVENTIONAL);
        ram
    }

    #[test]
    fn region_helpers() {
        let r = Region::new(0x1000, 0x3000);
        assert_eq!(r.len(), 0x2000);
        assert!(!r.is_empty());
        assert!(Region::new(5, 5).is_empty() && Region::new(6, 5).is_empty());
        assert_eq!(Region::new(6, 5).len(), 0);
        assert!(r.overlaps(&Region::new(0x2fff, 0x4000)));
        assert!(!r.overlaps(&Region::new(0x3000, 0x4000)));
        assert!(
            !r.overlaps(&Region::new(0x2000, 0x2000)),
            "empty ranges overlap nothing"
        );
        assert!(r.contains_range(&Region::new(0x1000, 0x3000)));
        assert!(!r.contains_range(&Region::new(0x1000, 0x3001)));
        assert!(!r.contains_range(&Region::new(0x2000, 0x1000)));
    }

    /// Whether `region` lies in usable RAM, found the slow way that needs no sorting:
    /// from the region's start, hop to the end of whichever entry holds the cursor.
    pub(crate) fn covered_entry_by_entry(ram: &[Region], region: &Region) -> bool {
        if region.is_empty() {
            return true;
        }
        let mut cursor = region.start;
        while cursor < region.end {
            match ram.iter().find(|r| r.start <= cursor && cursor < r.end) {
                // Each step moves the cursor strictly forward, so the loop ends.
                Some(r) => cursor = r.end,
                None => return false,
            }
        }
        true
    }

    #[test]
    fn touching_entries_in_any_order_merge_into_one_stretch() {
        let ram = touching_pages_in_descending_order();
        let usable = UsableRam::new(&ram).unwrap();
        let whole = Region::new(ONE_MIB, ONE_MIB + PAGES * PAGE);
        // Two stretches, so every question is answered by looking at one region.
        assert_eq!(usable.stretches, [CONVENTIONAL, whole]);
        assert!(usable.contains(&whole));
        assert!(!usable.contains(&Region::new(ONE_MIB - 1, ONE_MIB + PAGE)));
        assert!(!usable.contains(&Region::new(whole.end - PAGE, whole.end + 1)));
    }

    #[test]
    fn stretches_stay_apart_where_the_map_has_holes() {
        // Entries one page apart: nothing merges, and a range over a hole is not RAM.
        let ram: Vec<Region> = (0..1024_u64)
            .map(|page| Region::new(page * 2 * PAGE, (page * 2 + 1) * PAGE))
            .collect();
        let usable = UsableRam::new(&ram).unwrap();
        assert_eq!(usable.stretches.len(), 1024);
        assert!(usable.contains(&Region::new(2 * PAGE, 3 * PAGE)));
        assert!(!usable.contains(&Region::new(2 * PAGE, 4 * PAGE)));
        assert!(!usable.contains(&Region::new(PAGE, PAGE + 1)));
    }

    /// A region of up to `max_len` bytes starting at a page-ish or arbitrary address.
    pub(crate) fn region(max_start: u64, max_len: u64) -> impl Strategy<Value = Region> {
        (0..max_start, 0..max_len)
            .prop_map(|(start, len)| Region::new(start, start.saturating_add(len)))
    }

    pub(crate) fn arbitrary_region() -> impl Strategy<Value = Region> {
        prop_oneof![
            4 => region(1 << 34, 1 << 30),
            1 => (any::<u64>(), any::<u64>()).prop_map(|(start, end)| Region::new(start, end)),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1024))]

        /// The merged stretches answer exactly as a walk over the raw entries does.
        #[test]
        fn usable_ram_agrees_with_the_entry_by_entry_walk(
            ram in prop::collection::vec(prop_oneof![
                3 => region(1 << 16, 1 << 13),
                1 => arbitrary_region(),
            ], 0..24),
            question in prop_oneof![3 => region(1 << 16, 1 << 14), 1 => arbitrary_region()],
        ) {
            let usable = UsableRam::new(&ram).unwrap();
            prop_assert_eq!(usable.contains(&question), covered_entry_by_entry(&ram, &question));
            for pair in usable.stretches.windows(2) {
                prop_assert!(pair[0].end < pair[1].start, "stretches touch or overlap: {:?}", pair);
            }
        }
    }
}
