//! The page tables the kernel runs on when the loader jumps to it.
//!
//! The loader hands over a four-level x86_64 hierarchy that identity-maps a few
//! ranges (chosen by [`crate::layout`]) with 4 KiB and 2 MiB pages only, because
//! kernel 0.11.0 panics on 1 GiB pages. PML4 slot 511 points back at the PML4
//! itself: kernels 0.6–0.10 find their tables through that recursive entry. Kernels
//! 0.11 and later instead walk the tables by their physical addresses, so every table
//! page must itself lie in identity-mapped, writable memory; [`build_page_tables`]
//! checks that.
//!
//! The tables are written into an arena of [`PageTable`]s whose first byte sits at a
//! known physical address. Because the hand-over mapping is the identity, a table's
//! physical address is also the address the kernel reads it at.

use alloc::vec::Vec;

use x86_64::structures::paging::page_table::PageTableEntry;
use x86_64::structures::paging::{PageTable, PageTableFlags};
use x86_64::PhysAddr;

use crate::error::LoadError;

/// The size of one page-table page, and of a small page.
const TABLE_BYTES: u64 = 0x1000;
/// Entries per table.
const ENTRIES: u64 = 512;
/// The PML4 slot that holds the recursive entry.
const RECURSIVE_SLOT: usize = 511;
/// Identity mappings must end at or below this address: higher addresses are not
/// canonical lower-half virtual addresses, so they cannot be mapped to themselves.
/// This also keeps every mapping clear of the recursive PML4 slot 511.
pub const IDENTITY_LIMIT: u64 = 1 << 47;
/// Kernels with SMP support load CR3 for the other CPUs as a 32-bit value.
const PML4_LIMIT: u64 = 1 << 32;

/// The page sizes the loader uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageSize {
    /// A 4 KiB page, mapped by a page-table (level 1) entry.
    Size4K,
    /// A 2 MiB page, mapped by a page-directory (level 2) entry with `HUGE_PAGE`.
    Size2M,
}

impl PageSize {
    /// The page size in bytes.
    pub const fn bytes(self) -> u64 {
        match self {
            PageSize::Size4K => 0x1000,
            PageSize::Size2M => 0x20_0000,
        }
    }
}

/// One identity-mapped range. `start` and `end` are aligned to the page size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mapping {
    /// The first address mapped.
    pub start: u64,
    /// The first address after the range.
    pub end: u64,
    /// The page size used for the whole range.
    pub page_size: PageSize,
    /// Whether the kernel may write through this mapping.
    pub writable: bool,
}

impl Mapping {
    /// An identity mapping of `[start, end)`.
    pub const fn new(start: u64, end: u64, page_size: PageSize, writable: bool) -> Mapping {
        Mapping {
            start,
            end,
            page_size,
            writable,
        }
    }
}

/// What [`build_page_tables`] produced.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PageTableStats {
    /// Table pages used, the PML4 included.
    pub tables: usize,
    /// Bytes mapped with 4 KiB pages.
    pub bytes_4k: u64,
    /// Bytes mapped with 2 MiB pages.
    pub bytes_2m: u64,
}

/// The bytes one entry covers at each level, from the PML4 down.
const PML4_ENTRY: u64 = 1 << 39;
const PDPT_ENTRY: u64 = 1 << 30;
const PD_ENTRY: u64 = 1 << 21;

/// Counts the distinct `granule`-sized slots that ranges sorted by start touch.
/// Ranges that share a slot count it once, so the result is the number of tables one
/// level below that granule.
fn distinct_slots(sorted: impl Iterator<Item = (u64, u64)>, granule: u64) -> usize {
    let mut count: u64 = 0;
    let mut covered_up_to: Option<u64> = None;
    for (start, end) in sorted.filter(|(start, end)| start < end) {
        let (first, last) = (start / granule, (end - 1) / granule);
        // Slots at or below `covered_up_to` have been counted already (the ranges
        // are sorted by start, so their first slots never go back).
        let first = match covered_up_to {
            Some(done) if done >= last => continue,
            Some(done) if done >= first => done + 1,
            _ => first,
        };
        count = count.saturating_add(last - first + 1);
        covered_up_to = Some(last);
    }
    usize::try_from(count).unwrap_or(usize::MAX)
}

/// How many 4 KiB table pages [`build_page_tables`] will use for these mappings
/// (the PML4 included).
pub fn count_tables(mappings: &[Mapping]) -> usize {
    let mut sorted = mappings.to_vec();
    sort_by_start(&mut sorted);
    count_tables_sorted(&sorted)
}

/// [`count_tables`] of mappings sorted by start.
fn count_tables_sorted(sorted: &[Mapping]) -> usize {
    let all = || sorted.iter().map(|m| (m.start, m.end));
    let small = sorted
        .iter()
        .filter(|m| m.page_size == PageSize::Size4K)
        .map(|m| (m.start, m.end));
    // One PDPT per PML4 slot, one PD per PDPT slot, one PT per PD slot that holds
    // 4 KiB pages.
    1usize
        .saturating_add(distinct_slots(all(), PML4_ENTRY))
        .saturating_add(distinct_slots(all(), PDPT_ENTRY))
        .saturating_add(distinct_slots(small, PD_ENTRY))
}

/// Sorts mappings by start, without running the sort when they already are (the
/// layout planning hands them over sorted; under emulation, code that does not run
/// costs nothing, while translating it costs more than running it).
fn sort_by_start(mappings: &mut [Mapping]) {
    if !mappings.is_sorted_by_key(|m| m.start) {
        mappings.sort_unstable_by_key(|m| m.start);
    }
}

/// Checks one mapping on its own: non-empty, aligned, identity-mappable.
fn check_mapping(m: &Mapping) -> Result<(), LoadError> {
    let bad = |what| LoadError::BadMapping {
        what,
        start: m.start,
        end: m.end,
    };
    if m.start >= m.end {
        return Err(bad("the mapping is empty"));
    }
    let size = m.page_size.bytes();
    if !m.start.is_multiple_of(size) || !m.end.is_multiple_of(size) {
        return Err(bad("the mapping is not aligned to its page size"));
    }
    if m.end > IDENTITY_LIMIT {
        return Err(bad(
            "the mapping reaches beyond the canonical lower half (PML4 slots 256-511)",
        ));
    }
    Ok(())
}

/// Whether `[start, end)` lies inside the union of the writable mappings, which
/// must be sorted by start and disjoint.
fn covered_writable(sorted: &[Mapping], start: u64, end: u64) -> bool {
    let mut cursor = start;
    for m in sorted.iter().filter(|m| m.writable) {
        if cursor >= end {
            break;
        }
        if m.start <= cursor && cursor < m.end {
            cursor = m.end;
        }
    }
    cursor >= end
}

/// Hands out zeroed table pages from the arena in order.
struct Arena<'a> {
    tables: &'a mut [PageTable],
    phys: u64,
    used: usize,
}

impl Arena<'_> {
    /// The physical address of arena page `index`.
    fn phys_of(&self, index: usize) -> u64 {
        // `build_page_tables` checked that the used part of the arena is addressable.
        self.phys + index as u64 * TABLE_BYTES
    }

    /// The arena index of the table an entry points at, if it is one of ours.
    fn index_of(&self, phys: u64) -> Option<usize> {
        let offset = phys.checked_sub(self.phys)?;
        let index = usize::try_from(offset / TABLE_BYTES).ok()?;
        (index < self.used).then_some(index)
    }

    /// Takes the next page, zeroes it and returns its index.
    fn alloc(&mut self, needed: usize) -> Result<usize, LoadError> {
        let index = self.used;
        let table = self
            .tables
            .get_mut(index)
            .ok_or(LoadError::NotEnoughMemory {
                what: "page-table arena",
                start: self.phys,
                end: self
                    .phys
                    .saturating_add((needed as u64).saturating_mul(TABLE_BYTES)),
            })?;
        table.zero();
        self.used += 1;
        Ok(index)
    }

    /// Returns the table that entry `slot` of table `parent` points at, creating it
    /// if the entry is empty. `addr` is the address being mapped, for error messages.
    fn child(
        &mut self,
        parent: usize,
        slot: usize,
        addr: u64,
        needed: usize,
    ) -> Result<usize, LoadError> {
        let entry = &self.tables[parent][slot];
        if entry.is_unused() {
            let child = self.alloc(needed)?;
            let addr = PhysAddr::new(self.phys_of(child));
            self.tables[parent][slot]
                .set_addr(addr, PageTableFlags::PRESENT | PageTableFlags::WRITABLE);
            return Ok(child);
        }
        if entry.flags().contains(PageTableFlags::HUGE_PAGE) {
            // Only reachable if two mappings share a 2 MiB slot, which the overlap
            // check rules out; refuse rather than silently remap.
            return Err(LoadError::BadMapping {
                what: "a huge page already covers this range",
                start: addr,
                end: addr.saturating_add(TABLE_BYTES),
            });
        }
        let phys = entry.addr().as_u64();
        self.index_of(phys).ok_or(LoadError::BadMapping {
            what: "a table entry points outside the arena",
            start: phys,
            end: phys.saturating_add(TABLE_BYTES),
        })
    }
}

/// The table index for `addr` at the level whose entries cover `entry_bytes`.
fn slot(addr: u64, entry_bytes: u64) -> usize {
    ((addr / entry_bytes) % ENTRIES) as usize
}

/// Builds the hand-over page tables in `arena` (`arena[0]` becomes the PML4), whose
/// first byte is at physical address `arena_phys`. Tables reference each other by
/// `arena_phys + index * 4096`, which is where the kernel finds them because the
/// mapping is the identity.
///
/// PML4\[511\] is the recursive entry; 2 MiB pages carry `HUGE_PAGE`; no entry carries
/// `NO_EXECUTE` (the bit is reserved until the kernel enables EFER.NXE). Only the
/// arena pages actually used are zeroed and written. Returns the PML4's physical
/// address and what was built.
///
/// Refuses empty, misaligned or overlapping mappings and mappings beyond the
/// canonical lower half, an arena that is too small, misaligned or above 4 GiB, and
/// tables that the mappings would leave unmapped or read-only.
pub fn build_page_tables(
    mappings: &[Mapping],
    arena: &mut [PageTable],
    arena_phys: u64,
) -> Result<(u64, PageTableStats), LoadError> {
    let mut sorted: Vec<Mapping> = mappings.to_vec();
    sort_by_start(&mut sorted);
    for m in &sorted {
        check_mapping(m)?;
    }
    for pair in sorted.windows(2) {
        if pair[1].start < pair[0].end {
            return Err(LoadError::BadMapping {
                what: "two mappings overlap",
                start: pair[1].start,
                end: pair[0].end.min(pair[1].end),
            });
        }
    }

    let needed = count_tables_sorted(&sorted);
    let arena_end = u64::try_from(needed)
        .ok()
        .and_then(|n| n.checked_mul(TABLE_BYTES))
        .and_then(|bytes| arena_phys.checked_add(bytes))
        .ok_or(LoadError::BadMapping {
            what: "the page-table arena does not fit in the address space",
            start: arena_phys,
            end: u64::MAX,
        })?;
    if !arena_phys.is_multiple_of(TABLE_BYTES) {
        return Err(LoadError::BadMapping {
            what: "the page-table arena is not 4 KiB aligned",
            start: arena_phys,
            end: arena_end,
        });
    }
    if arena_phys > PML4_LIMIT - TABLE_BYTES {
        return Err(LoadError::BadMapping {
            what: "the PML4 lies above 4 GiB (SMP kernels load CR3 as 32 bits)",
            start: arena_phys,
            end: arena_end,
        });
    }
    if arena.len() < needed {
        return Err(LoadError::NotEnoughMemory {
            what: "page-table arena",
            start: arena_phys,
            end: arena_end,
        });
    }
    // Kernels 0.11+ read and extend the tables through the identity mapping, so
    // every table page must be mapped, and writable.
    if !covered_writable(&sorted, arena_phys, arena_end) {
        return Err(LoadError::BadMapping {
            what: "the page tables themselves are not identity-mapped writable",
            start: arena_phys,
            end: arena_end,
        });
    }

    let mut arena = Arena {
        tables: arena,
        phys: arena_phys,
        used: 0,
    };
    let pml4 = arena.alloc(needed)?;
    let mut stats = PageTableStats::default();
    for m in &sorted {
        let mut leaf_flags = PageTableFlags::PRESENT;
        if m.writable {
            leaf_flags |= PageTableFlags::WRITABLE;
        }
        let size = m.page_size.bytes();
        if m.page_size == PageSize::Size2M {
            leaf_flags |= PageTableFlags::HUGE_PAGE;
        }
        let mut addr = m.start;
        while addr < m.end {
            let pdpt = arena.child(pml4, slot(addr, PML4_ENTRY), addr, needed)?;
            let pd = arena.child(pdpt, slot(addr, PDPT_ENTRY), addr, needed)?;
            // The leaf table, and how far it reaches: the pages up to there are filled
            // in one tight loop (the upper levels are the same for all of them).
            let (table, table_bytes) = match m.page_size {
                PageSize::Size2M => (pd, PDPT_ENTRY),
                PageSize::Size4K => (
                    arena.child(pd, slot(addr, PD_ENTRY), addr, needed)?,
                    PD_ENTRY,
                ),
            };
            // `check_mapping` bounded `end` by 2^47, so none of this overflows.
            let run_end = m.end.min((addr / table_bytes + 1) * table_bytes);
            let entries = &mut arena.tables[table];
            while addr < run_end {
                let entry = &mut entries[slot(addr, size)];
                if !entry.is_unused() {
                    return Err(LoadError::BadMapping {
                        what: "a page is mapped twice",
                        start: addr,
                        end: addr + size,
                    });
                }
                entry.set_addr(PhysAddr::new(addr), leaf_flags);
                addr += size;
            }
        }
        match m.page_size {
            PageSize::Size4K => stats.bytes_4k += m.end - m.start,
            PageSize::Size2M => stats.bytes_2m += m.end - m.start,
        }
    }
    arena.tables[pml4][RECURSIVE_SLOT].set_addr(
        PhysAddr::new(arena_phys),
        PageTableFlags::PRESENT | PageTableFlags::WRITABLE,
    );
    stats.tables = arena.used;
    Ok((arena_phys, stats))
}

/// Translates `virt` by walking the tables in `arena`, where the table at physical
/// address `p` is `arena[(p - arena_phys) / 4096]` and `arena[0]` is the PML4.
///
/// Returns the physical address, the page size and the leaf entry's flags, or
/// `None` if `virt` is not canonical, not mapped, mapped by a 1 GiB page (the loader
/// never builds one), or if a table lies outside the arena. The recursive entry is
/// followed like any other, so the PML4 appears at 0xFFFF_FFFF_FFFF_F000.
pub fn translate(
    arena: &[PageTable],
    arena_phys: u64,
    virt: u64,
) -> Option<(u64, PageSize, PageTableFlags)> {
    // Bits 63..47 must all be copies of bit 47.
    let high = virt >> 47;
    if high != 0 && high != (1 << 17) - 1 {
        return None;
    }
    let table_at = |phys: u64| -> Option<&PageTable> {
        let index = usize::try_from(phys.checked_sub(arena_phys)? / TABLE_BYTES).ok()?;
        arena.get(index)
    };
    fn present(table: &PageTable, virt: u64, entry_bytes: u64) -> Option<&PageTableEntry> {
        let entry = &table[slot(virt, entry_bytes)];
        entry
            .flags()
            .contains(PageTableFlags::PRESENT)
            .then_some(entry)
    }

    let pml4 = table_at(arena_phys)?;
    let pdpt = table_at(present(pml4, virt, PML4_ENTRY)?.addr().as_u64())?;
    let pdpt_entry = present(pdpt, virt, PDPT_ENTRY)?;
    if pdpt_entry.flags().contains(PageTableFlags::HUGE_PAGE) {
        return None;
    }
    let pd = table_at(pdpt_entry.addr().as_u64())?;
    let pd_entry = present(pd, virt, PD_ENTRY)?;
    if pd_entry.flags().contains(PageTableFlags::HUGE_PAGE) {
        let phys = pd_entry.addr().as_u64() + virt % PD_ENTRY;
        return Some((phys, PageSize::Size2M, pd_entry.flags()));
    }
    let pt = table_at(pd_entry.addr().as_u64())?;
    let pt_entry = present(pt, virt, TABLE_BYTES)?;
    let phys = pt_entry.addr().as_u64() + virt % TABLE_BYTES;
    Some((phys, PageSize::Size4K, pt_entry.flags()))
}

/// How many consecutive 8-byte words from `start` up (at most `max`) the tables in
/// `arena` map: a word counts when its first and its last byte translate (see
/// [`translate`]). The exception handler reads a stack dump only this far, so that it
/// never faults on the memory it reports.
pub fn readable_words(arena: &[PageTable], arena_phys: u64, start: u64, max: usize) -> usize {
    let mapped = |virt: u64| translate(arena, arena_phys, virt).is_some();
    (0..max)
        .take_while(|&i| {
            let first = (i as u64)
                .checked_mul(8)
                .and_then(|offset| start.checked_add(offset));
            first
                .and_then(|first| Some((first, first.checked_add(7)?)))
                .is_some_and(|(first, last)| mapped(first) && mapped(last))
        })
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn map(start: u64, end: u64, page_size: PageSize, writable: bool) -> Mapping {
        Mapping::new(start, end, page_size, writable)
    }

    /// The mappings `plan_layout` produces on QEMU for a kernel at 8 MiB: the MBI
    /// page read-only, the loader's first 2 MiB page in 4 KiB pages, then 2 MiB
    /// pages up to the kernel's end.
    const QEMU: [Mapping; 3] = [
        map(0x9000, 0xa000, PageSize::Size4K, false),
        map(0x10_0000, 0x20_0000, PageSize::Size4K, true),
        map(0x20_0000, 0xc0_0000, PageSize::Size2M, true),
    ];
    /// The arena inside the loader's .bss.
    const ARENA_PHYS: u64 = 0x12_3000;

    /// An arena of `pages` tables full of garbage, as uninitialised .bss after a
    /// warm reboot could be.
    fn garbage_arena(pages: usize) -> Vec<PageTable> {
        (0..pages)
            .map(|page| {
                let mut table = PageTable::new();
                for (i, entry) in table.iter_mut().enumerate() {
                    let addr = 0xdead_0000_0000 + ((page * 512 + i) as u64) * 0x1000;
                    entry.set_addr(
                        PhysAddr::new(addr),
                        PageTableFlags::PRESENT | PageTableFlags::HUGE_PAGE,
                    );
                }
                table
            })
            .collect()
    }

    /// Whether two arenas hold the same entries.
    fn same(a: &[PageTable], b: &[PageTable]) -> bool {
        let entries = |t: &[PageTable]| -> Vec<(u64, PageTableFlags)> {
            t.iter()
                .flat_map(|t| t.iter().map(|e| (e.addr().as_u64(), e.flags())))
                .collect()
        };
        entries(a) == entries(b)
    }

    /// The leaf flags a mapping must produce.
    fn leaf_flags(m: &Mapping) -> PageTableFlags {
        let mut flags = PageTableFlags::PRESENT;
        if m.writable {
            flags |= PageTableFlags::WRITABLE;
        }
        if m.page_size == PageSize::Size2M {
            flags |= PageTableFlags::HUGE_PAGE;
        }
        flags
    }

    /// Builds `mappings` in a garbage arena one page larger than needed and checks
    /// everything the kernel relies on. Returns the stats.
    fn build_and_verify(mappings: &[Mapping], arena_phys: u64) -> PageTableStats {
        let needed = count_tables(mappings);
        let mut arena = garbage_arena(needed + 1);
        let (pml4, stats) = build_page_tables(mappings, &mut arena, arena_phys).unwrap();
        assert_eq!(pml4, arena_phys);
        assert_eq!(
            stats.tables, needed,
            "count_tables disagrees with the arena use"
        );
        assert!(
            same(&arena[needed..], &garbage_arena(needed + 1)[needed..]),
            "a page past the used ones was touched"
        );

        for m in mappings {
            // Every page of a 4 KiB mapping, and a few addresses in each 2 MiB page.
            let step = m.page_size.bytes();
            let mut page = m.start;
            while page < m.end {
                for virt in [page, page + 0x123, page + step - 1] {
                    let got = translate(&arena, arena_phys, virt);
                    assert_eq!(
                        got,
                        Some((virt, m.page_size, leaf_flags(m))),
                        "{virt:#x} in {m:?}"
                    );
                }
                page += step;
            }
        }

        // The recursive entry, as kernels 0.6-0.10 read it.
        let recursive = &arena[0][RECURSIVE_SLOT];
        assert_eq!(recursive.addr().as_u64(), arena_phys);
        assert_eq!(
            recursive.flags(),
            PageTableFlags::PRESENT | PageTableFlags::WRITABLE
        );
        assert_eq!(
            translate(&arena, arena_phys, 0xffff_ffff_ffff_f000),
            Some((
                arena_phys,
                PageSize::Size4K,
                PageTableFlags::PRESENT | PageTableFlags::WRITABLE
            ))
        );

        // Every table an entry points at is one of the used arena pages, each is
        // reached once, and kernels 0.11+ can reach and write it through the identity
        // mapping. No entry anywhere sets NO_EXECUTE.
        let arena_end = arena_phys + needed as u64 * 0x1000;
        let index = |phys: u64| {
            assert!(
                phys >= arena_phys && phys < arena_end,
                "table {phys:#x} outside the used arena"
            );
            ((phys - arena_phys) / 0x1000) as usize
        };
        let mut reached = vec![0];
        let mut level = vec![0];
        for depth in 0..3 {
            let mut next = Vec::new();
            for &table in &level {
                for (slot, entry) in arena[table].iter().enumerate() {
                    let flags = entry.flags();
                    assert!(!flags.contains(PageTableFlags::NO_EXECUTE));
                    let recursive = depth == 0 && slot == RECURSIVE_SLOT;
                    if entry.is_unused() || recursive || flags.contains(PageTableFlags::HUGE_PAGE) {
                        continue;
                    }
                    assert_eq!(flags, PageTableFlags::PRESENT | PageTableFlags::WRITABLE);
                    next.push(index(entry.addr().as_u64()));
                }
            }
            reached.extend_from_slice(&next);
            level = next;
        }
        reached.sort_unstable();
        assert_eq!(
            reached,
            (0..needed).collect::<Vec<_>>(),
            "tables reached vs. arena use"
        );
        for page in 0..needed as u64 {
            let phys = arena_phys + page * 0x1000;
            let (at, _, flags) = translate(&arena, arena_phys, phys).expect("table page unmapped");
            assert_eq!(at, phys);
            assert!(flags.contains(PageTableFlags::WRITABLE));
        }
        stats
    }

    #[test]
    fn qemu_tables_map_exactly_the_planned_ranges() {
        let stats = build_and_verify(&QEMU, ARENA_PHYS);
        // PML4, one PDPT, one PD, one PT shared by the MBI page and the loader.
        assert_eq!(
            stats,
            PageTableStats {
                tables: 4,
                bytes_4k: 0x10_1000,
                bytes_2m: 0xa0_0000
            }
        );

        let mut arena = garbage_arena(4);
        build_page_tables(&QEMU, &mut arena, ARENA_PHYS).unwrap();
        let unmapped = [
            0,
            0xfff,
            0x8000,
            0x8fff,
            0xa000,
            0x9_fc00,
            0xe_0000,
            0xf_ffff,
            0xc0_0000,
            0xc0_1000,
            0x4000_0000,
            0x80_0000_0000,
            0x7fff_ffff_f000,
            // Not canonical.
            0x8000_0000_0000,
        ];
        for virt in unmapped {
            assert_eq!(translate(&arena, ARENA_PHYS, virt), None, "{virt:#x}");
        }
        assert_eq!(translate(&arena, ARENA_PHYS, 0xf000), None);
    }

    #[test]
    fn tables_span_level_boundaries() {
        // A 4 KiB range across a 2 MiB boundary, 2 MiB pages across 1 GiB and 512 GiB
        // boundaries, with the arena inside the first range.
        let mappings = [
            map(0x1f_0000, 0x20_1000, PageSize::Size4K, true),
            map(0x3fe0_0000, 0x4020_0000, PageSize::Size2M, false),
            map(0x7f_ffe0_0000, 0x80_0020_0000, PageSize::Size2M, true),
        ];
        let stats = build_and_verify(&mappings, 0x1f_0000);
        // PML4; PDPTs for PML4 slots 0 and 1; PDs for GiB 0, 1, 511 (slot 0) and 512;
        // PTs for 2 MiB slots 0 and 1.
        assert_eq!(
            stats,
            PageTableStats {
                tables: 9,
                bytes_4k: 0x1_1000,
                bytes_2m: 0x80_0000
            }
        );
    }

    #[test]
    fn counts_tables() {
        let cases: [(&[Mapping], usize); 7] = [
            (&[], 1),
            (&[map(0x1000, 0x2000, PageSize::Size4K, true)], 4),
            (&[map(0x20_0000, 0x40_0000, PageSize::Size2M, true)], 3),
            (&[map(0x1f_f000, 0x20_1000, PageSize::Size4K, true)], 5),
            (&[map(0x3fe0_0000, 0x4020_0000, PageSize::Size2M, true)], 4),
            (
                &[map(0x7f_ffe0_0000, 0x80_0020_0000, PageSize::Size2M, true)],
                5,
            ),
            (&QEMU, 4),
        ];
        for (mappings, expected) in cases {
            assert_eq!(count_tables(mappings), expected, "{mappings:?}");
        }
    }

    #[test]
    fn refuses_bad_requests() {
        let bad = |what, start, end| Err(LoadError::BadMapping { what, start, end });
        let loader = map(0x10_0000, 0x20_0000, PageSize::Size4K, true);
        // Name, mappings, arena address, arena pages, expected result.
        type Case = (
            &'static str,
            Vec<Mapping>,
            u64,
            usize,
            Result<(), LoadError>,
        );
        let cases: [Case; 10] = [
            (
                "misaligned 4 KiB mapping",
                vec![loader, map(0x30_0800, 0x30_1000, PageSize::Size4K, true)],
                ARENA_PHYS,
                8,
                bad(
                    "the mapping is not aligned to its page size",
                    0x30_0800,
                    0x30_1000,
                ),
            ),
            (
                "misaligned 2 MiB mapping",
                vec![loader, map(0x20_0000, 0x30_0000, PageSize::Size2M, true)],
                ARENA_PHYS,
                8,
                bad(
                    "the mapping is not aligned to its page size",
                    0x20_0000,
                    0x30_0000,
                ),
            ),
            (
                "empty mapping",
                vec![loader, map(0x30_0000, 0x30_0000, PageSize::Size4K, true)],
                ARENA_PHYS,
                8,
                bad("the mapping is empty", 0x30_0000, 0x30_0000),
            ),
            (
                "overlapping mappings",
                vec![loader, map(0x1f_f000, 0x20_1000, PageSize::Size4K, true)],
                ARENA_PHYS,
                8,
                bad("two mappings overlap", 0x1f_f000, 0x20_0000),
            ),
            (
                "a 4 KiB mapping under a 2 MiB one",
                vec![
                    map(0, 0x20_0000, PageSize::Size2M, true),
                    map(0x1000, 0x2000, PageSize::Size4K, true),
                ],
                0x1000,
                8,
                bad("two mappings overlap", 0x1000, 0x2000),
            ),
            (
                "a mapping in the recursive slot",
                vec![
                    loader,
                    map(0xff80_0000_0000, 0xff80_0020_0000, PageSize::Size2M, true),
                ],
                ARENA_PHYS,
                8,
                bad(
                    "the mapping reaches beyond the canonical lower half (PML4 slots 256-511)",
                    0xff80_0000_0000,
                    0xff80_0020_0000,
                ),
            ),
            (
                "arena outside the mappings",
                vec![loader],
                0x20_0000,
                8,
                bad(
                    "the page tables themselves are not identity-mapped writable",
                    0x20_0000,
                    0x20_4000,
                ),
            ),
            (
                "arena straddling the end of the mappings",
                vec![loader],
                0x1f_e000,
                8,
                bad(
                    "the page tables themselves are not identity-mapped writable",
                    0x1f_e000,
                    0x20_2000,
                ),
            ),
            (
                "arena mapped read-only",
                vec![map(0x9000, 0xa000, PageSize::Size4K, false), loader],
                0x9000,
                8,
                bad(
                    "the page tables themselves are not identity-mapped writable",
                    0x9000,
                    0xd000,
                ),
            ),
            (
                "arena too small",
                QEMU.to_vec(),
                ARENA_PHYS,
                3,
                Err(LoadError::NotEnoughMemory {
                    what: "page-table arena",
                    start: ARENA_PHYS,
                    end: ARENA_PHYS + 0x4000,
                }),
            ),
        ];
        for (name, mappings, arena_phys, pages, expected) in cases {
            let mut arena = garbage_arena(pages);
            let got = build_page_tables(&mappings, &mut arena, arena_phys).map(|_| ());
            assert_eq!(got, expected, "{name}");
            assert!(
                same(&arena, &garbage_arena(pages)),
                "{name}: a refused build wrote to the arena"
            );
        }

        let mut arena = garbage_arena(4);
        let high = [map(0x1_0000_0000, 0x1_0020_0000, PageSize::Size2M, true)];
        assert_eq!(
            build_page_tables(&high, &mut arena, 0x1_0000_0000),
            Err(LoadError::BadMapping {
                what: "the PML4 lies above 4 GiB (SMP kernels load CR3 as 32 bits)",
                start: 0x1_0000_0000,
                end: 0x1_0000_3000,
            })
        );
        assert_eq!(
            build_page_tables(&QEMU, &mut arena, ARENA_PHYS + 0x10),
            Err(LoadError::BadMapping {
                what: "the page-table arena is not 4 KiB aligned",
                start: ARENA_PHYS + 0x10,
                end: ARENA_PHYS + 0x4010,
            })
        );
    }

    #[test]
    fn translate_refuses_foreign_tables() {
        // A PML4 whose entries point outside the arena translates nothing.
        let arena = garbage_arena(1);
        assert_eq!(translate(&arena, ARENA_PHYS, 0x1000), None);
        assert_eq!(translate(&[], ARENA_PHYS, 0x1000), None);
    }

    #[test]
    fn readable_words_stop_at_the_first_unmapped_byte() {
        // 4 KiB pages from 1 MiB, with a hole at 0x10_3000 (a stack's guard page).
        let mappings = [
            map(0x10_0000, 0x10_3000, PageSize::Size4K, true),
            map(0x10_4000, 0x20_0000, PageSize::Size4K, true),
        ];
        let mut arena = garbage_arena(count_tables(&mappings));
        build_page_tables(&mappings, &mut arena, ARENA_PHYS).unwrap();
        let words = |start, max| readable_words(&arena, ARENA_PHYS, start, max);
        assert_eq!(words(0x10_1000, 16), 16, "all mapped");
        assert_eq!(words(0x10_2fc0, 16), 8, "up to the hole");
        assert_eq!(words(0x10_2ffc, 16), 0, "a word across into the hole");
        assert_eq!(words(0x10_3ff8, 16), 0, "rsp in the hole");
        assert_eq!(words(0x10_4000, 3), 3, "bounded by max");
        assert_eq!(words(u64::MAX - 3, 16), 0, "no wrap at the top");
        assert_eq!(words(0x8000_0000_0000_0000, 16), 0, "not canonical");
    }
}
