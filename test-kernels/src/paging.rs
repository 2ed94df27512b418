//! Walking x86_64 4-level page tables and the paging rules of the Hermit ABI as
//! checks.
//!
//! The walker never touches memory itself: it asks a [`Tables`] for entries by the
//! table's physical address. On the target that reads the table through its identity
//! mapping (which the newer kernels require); in host tests it reads fake tables.

#![forbid(unsafe_code)]

use crate::msg;
use crate::report::{ensure, failure, Check, Group, Hex};

/// Entry bit: present.
pub const PRESENT: u64 = 1 << 0;
/// Entry bit: writable.
pub const WRITABLE: u64 = 1 << 1;
/// Entry bit: page size (a 2 MiB page in a PD, a 1 GiB page in a PDPT).
pub const HUGE: u64 = 1 << 7;
/// Entry bit: no execute (reserved unless EFER.NXE is set).
pub const NO_EXECUTE: u64 = 1 << 63;
/// The frame address bits of an entry.
pub const ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;

/// 4 KiB.
pub const SIZE_4K: u64 = 1 << 12;
/// 2 MiB.
pub const SIZE_2M: u64 = 1 << 21;
/// 1 GiB.
pub const SIZE_1G: u64 = 1 << 30;
/// The lower canonical half ends here.
pub const LOWER_HALF_END: u64 = 1 << 47;
/// The address at which the recursive entry `PML4[511]` shows the PML4 itself.
pub const RECURSIVE_PML4: u64 = 0xffff_ffff_ffff_f000;

/// Reads page-table entries by the physical address of their table.
pub trait Tables {
    /// Entry `index` (0..512) of the table at physical address `table`.
    fn entry(&self, table: u64, index: usize) -> u64;
}

/// Bytes covered by one entry of a table at `level` (4 = PML4 ... 1 = PT).
pub const fn entry_span(level: u8) -> u64 {
    1 << (12 + 9 * (level as u32 - 1))
}

/// The index into the table at `level` for virtual address `va`.
pub const fn index(va: u64, level: u8) -> usize {
    ((va >> (12 + 9 * (level as u32 - 1))) & 511) as usize
}

/// Sign-extends a 48-bit linear address into a canonical one.
pub const fn canonical(linear: u64) -> u64 {
    (((linear << 16) as i64) >> 16) as u64
}

/// One leaf mapping (a page of some size) and its effective permissions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mapping {
    /// First virtual address of the page.
    pub virt: u64,
    /// First physical address of the page.
    pub phys: u64,
    /// Page size: 4 KiB, 2 MiB or 1 GiB.
    pub size: u64,
    /// Writable at every level.
    pub writable: bool,
    /// No-execute at some level.
    pub no_execute: bool,
}

impl Mapping {
    /// The physical address `va` (inside this page) maps to.
    pub fn translate(&self, va: u64) -> u64 {
        self.phys + (va - self.virt)
    }
}

fn leaf(e: u64, virt: u64, size: u64, writable: bool, no_execute: bool) -> Mapping {
    Mapping {
        virt,
        // Large pages keep PAT in bit 12: mask the frame to the page size.
        phys: e & ADDR_MASK & !(size - 1),
        size,
        writable: writable && e & WRITABLE != 0,
        no_execute: no_execute || e & NO_EXECUTE != 0,
    }
}

/// Translates `va` as the CPU would, starting at the PML4 in `cr3`.
pub fn translate<T: Tables + ?Sized>(t: &T, cr3: u64, va: u64) -> Option<Mapping> {
    let mut table = cr3 & ADDR_MASK;
    let mut writable = true;
    let mut no_execute = false;
    for level in (1..=4u8).rev() {
        let e = t.entry(table, index(va, level));
        if e & PRESENT == 0 {
            return None;
        }
        let span = entry_span(level);
        if level == 1 || (level <= 3 && e & HUGE != 0) {
            return Some(leaf(e, va & !(span - 1), span, writable, no_execute));
        }
        writable &= e & WRITABLE != 0;
        no_execute |= e & NO_EXECUTE != 0;
        table = e & ADDR_MASK;
    }
    None
}

/// The lowest mapping that overlaps the canonical range `[start, end)`, found by
/// skipping every non-present entry at the highest level it occurs, so that even
/// hundreds of GiB cost only the tables that exist.
pub fn first_mapping_in<T: Tables + ?Sized>(
    t: &T,
    cr3: u64,
    start: u64,
    end: u64,
) -> Option<Mapping> {
    const LINEAR: u64 = (1 << 48) - 1;
    let (start, end) = (
        start & LINEAR,
        if end == 0 { 1 << 48 } else { end & LINEAR },
    );
    if start >= end {
        return None;
    }
    scan(t, cr3 & ADDR_MASK, 4, 0, start, end, true, false)
}

#[allow(clippy::too_many_arguments)]
fn scan<T: Tables + ?Sized>(
    t: &T,
    table: u64,
    level: u8,
    base: u64,
    start: u64,
    end: u64,
    writable: bool,
    no_execute: bool,
) -> Option<Mapping> {
    let span = entry_span(level);
    let first = (start.saturating_sub(base) / span) as usize;
    let last = (((end - 1 - base) / span) as usize).min(511);
    for i in first..=last {
        let e = t.entry(table, i);
        if e & PRESENT == 0 {
            continue;
        }
        let entry_base = base + i as u64 * span;
        if level == 1 || (level <= 3 && e & HUGE != 0) {
            return Some(leaf(e, canonical(entry_base), span, writable, no_execute));
        }
        let found = scan(
            t,
            e & ADDR_MASK,
            level - 1,
            entry_base,
            start.max(entry_base),
            end.min(entry_base + span),
            writable && e & WRITABLE != 0,
            no_execute || e & NO_EXECUTE != 0,
        );
        if found.is_some() {
            return found;
        }
    }
    None
}

/// What a full walk of the tables reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// A table page: its physical address and level (4 = the PML4).
    Table {
        /// Physical address.
        phys: u64,
        /// Level.
        level: u8,
    },
    /// A present entry that points back at the PML4 (the recursive entry); the walk
    /// does not follow it.
    Recursive {
        /// Level of the table holding it.
        level: u8,
        /// Its index.
        index: usize,
    },
    /// A present entry with the PS bit in the PML4, where that bit is reserved.
    ReservedHuge {
        /// Its index.
        index: usize,
    },
    /// A leaf: a mapped page.
    Page(Mapping),
}

/// Visits every table reachable from `cr3` and every page they map, except through
/// entries pointing back at the PML4.
pub fn walk<T: Tables + ?Sized>(t: &T, cr3: u64, f: &mut dyn FnMut(Event)) {
    let root = cr3 & ADDR_MASK;
    walk_table(t, root, root, 4, 0, true, false, f);
}

#[allow(clippy::too_many_arguments)]
fn walk_table<T: Tables + ?Sized>(
    t: &T,
    root: u64,
    table: u64,
    level: u8,
    base: u64,
    writable: bool,
    no_execute: bool,
    f: &mut dyn FnMut(Event),
) {
    f(Event::Table { phys: table, level });
    let span = entry_span(level);
    for i in 0..512 {
        let e = t.entry(table, i);
        if e & PRESENT == 0 {
            continue;
        }
        let entry_base = base + i as u64 * span;
        if level == 4 && e & HUGE != 0 {
            f(Event::ReservedHuge { index: i });
            continue;
        }
        if level == 1 || e & HUGE != 0 {
            f(Event::Page(leaf(
                e,
                canonical(entry_base),
                span,
                writable,
                no_execute,
            )));
            continue;
        }
        if e & ADDR_MASK == root {
            f(Event::Recursive { level, index: i });
            continue;
        }
        walk_table(
            t,
            root,
            e & ADDR_MASK,
            level - 1,
            entry_base,
            writable && e & WRITABLE != 0,
            no_execute || e & NO_EXECUTE != 0,
            f,
        );
    }
}

const G: Group = Group::Paging;

/// Every byte of `[start, end)` is identity-mapped (and writable if asked).
pub fn check_identity<T: Tables + ?Sized>(
    t: &T,
    cr3: u64,
    check: &'static str,
    start: u64,
    end: u64,
    need_writable: bool,
) -> Check {
    let mut va = start & !(SIZE_4K - 1);
    while va < end {
        let Some(m) = translate(t, cr3, va) else {
            return Err(failure(G, check, msg!(Hex(va), " is not mapped")));
        };
        let pa = m.translate(va);
        ensure(pa == va, G, check, || {
            msg!(Hex(va), " maps to ", Hex(pa), ", not to itself")
        })?;
        ensure(!need_writable || m.writable, G, check, || {
            msg!(Hex(va), " is mapped read-only")
        })?;
        // Skip the rest of the page just checked: a 2 MiB page is one step.
        va = m.virt.wrapping_add(m.size);
        if va == 0 {
            break;
        }
    }
    Ok(())
}

/// Nothing in `[start, end)` is mapped, not even under a large page that starts below.
pub fn check_unmapped<T: Tables + ?Sized>(
    t: &T,
    cr3: u64,
    check: &'static str,
    start: u64,
    end: u64,
) -> Check {
    match first_mapping_in(t, cr3, start, end) {
        None => Ok(()),
        Some(m) => Err(failure(
            G,
            check,
            msg!(
                "[",
                Hex(start),
                ", ",
                Hex(end),
                ") overlaps the page ",
                Hex(m.virt),
                " (size ",
                Hex(m.size),
                ") -> ",
                Hex(m.phys)
            ),
        )),
    }
}

/// The page containing `addr` is unmapped or a 4 KiB page: no large page covers it.
pub fn check_no_large_page_at<T: Tables + ?Sized>(
    t: &T,
    cr3: u64,
    check: &'static str,
    addr: u64,
) -> Check {
    match translate(t, cr3, addr) {
        Some(m) if m.size > SIZE_4K => Err(failure(
            G,
            check,
            msg!(
                Hex(addr),
                " lies in a page of size ",
                Hex(m.size),
                " at ",
                Hex(m.virt)
            ),
        )),
        _ => Ok(()),
    }
}

/// Whole-table facts that the checks below need: one walk collects them all.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Survey {
    /// Table pages visited (the PML4 included).
    pub tables: u64,
    /// Leaf pages by size: 4 KiB, 2 MiB, 1 GiB.
    pub pages: [u64; 3],
    /// The first table page that is not identity-mapped, and what it maps to.
    pub table_not_identity: Option<(u64, Option<u64>)>,
    /// The first 1 GiB page.
    pub first_1g_page: Option<u64>,
    /// The first page with a no-execute bit.
    pub first_nx_page: Option<u64>,
    /// The first PML4 entry with the reserved PS bit.
    pub reserved_huge: Option<usize>,
    /// Recursive entries seen (level 4 index 511 is the expected one).
    pub recursive: [Option<(u8, usize)>; 2],
}

/// Walks everything once and records what the paging checks look at.
pub fn survey<T: Tables + ?Sized>(t: &T, cr3: u64) -> Survey {
    let mut s = Survey::default();
    walk(t, cr3, &mut |e| match e {
        Event::Table { phys, .. } => {
            s.tables += 1;
            let to = translate(t, cr3, phys).map(|m| m.translate(phys));
            if to != Some(phys) && s.table_not_identity.is_none() {
                s.table_not_identity = Some((phys, to));
            }
        }
        Event::Page(m) => {
            let slot = match m.size {
                SIZE_4K => 0,
                SIZE_2M => 1,
                _ => 2,
            };
            s.pages[slot] += 1;
            if m.size == SIZE_1G {
                s.first_1g_page.get_or_insert(m.virt);
            }
            if m.no_execute {
                s.first_nx_page.get_or_insert(m.virt);
            }
        }
        Event::Recursive { level, index } => {
            if let Some(slot) = s.recursive.iter_mut().find(|r| r.is_none()) {
                *slot = Some((level, index));
            }
        }
        Event::ReservedHuge { index } => {
            s.reserved_huge.get_or_insert(index);
        }
    });
    s
}

/// The newer kernels' rules (0.11+): every page-table page identity-mapped, no 1 GiB
/// pages; and for every kernel: no reserved PS bits, no NX bits unless EFER.NXE.
pub fn check_survey(s: &Survey, nxe: bool, identity_tables: bool, no_1g: bool) -> Check {
    if let Some(index) = s.reserved_huge {
        return Err(failure(
            G,
            "pml4-ps-bit",
            msg!("PML4[", Hex(index as u64), "] has PS set"),
        ));
    }
    if let (false, Some(va)) = (nxe, s.first_nx_page) {
        return Err(failure(
            G,
            "nx-without-nxe",
            msg!("page ", Hex(va), " has NX set but EFER.NXE is off"),
        ));
    }
    if identity_tables {
        if let Some((phys, to)) = s.table_not_identity {
            let detail = match to {
                Some(to) => msg!("table ", Hex(phys), " maps to ", Hex(to)),
                None => msg!("table ", Hex(phys), " is not mapped"),
            };
            return Err(failure(G, "tables-identity-mapped", detail));
        }
    }
    if no_1g {
        if let Some(va) = s.first_1g_page {
            return Err(failure(G, "no-1gib-pages", msg!("1 GiB page at ", Hex(va))));
        }
    }
    Ok(())
}

/// The older kernels' rule: `PML4[511]` points at the PML4 itself, present and
/// writable. (Reading through it is checked separately: that needs real memory.)
pub fn check_recursive_entry<T: Tables + ?Sized>(t: &T, cr3: u64) -> Check {
    let root = cr3 & ADDR_MASK;
    let e = t.entry(root, 511);
    ensure(e & PRESENT != 0, G, "recursive-pml4", || {
        msg!("PML4[511] = ", Hex(e), " is not present")
    })?;
    ensure(e & HUGE == 0, G, "recursive-pml4", || {
        msg!("PML4[511] = ", Hex(e), " has PS set")
    })?;
    ensure(e & ADDR_MASK == root, G, "recursive-pml4", || {
        msg!(
            "PML4[511] = ",
            Hex(e),
            " does not point at the PML4 ",
            Hex(root)
        )
    })?;
    ensure(e & WRITABLE != 0, G, "recursive-pml4", || {
        msg!("PML4[511] = ", Hex(e), " is read-only")
    })
}

#[cfg(test)]
pub(crate) mod fake {
    //! Fake page tables in a map, and a builder that lays them out like a loader would.

    use super::*;
    use std::collections::BTreeMap;

    /// Tables by physical address; every table is allocated from `next`.
    pub struct FakeTables {
        pub tables: BTreeMap<u64, [u64; 512]>,
        pub root: u64,
        next: u64,
    }

    impl Tables for FakeTables {
        fn entry(&self, table: u64, index: usize) -> u64 {
            self.tables
                .get(&table)
                .unwrap_or_else(|| panic!("no table at {table:#x}"))[index]
        }
    }

    impl FakeTables {
        /// Empty tables; table pages are allocated from `pool` upwards.
        pub fn new(pool: u64) -> Self {
            let mut t = FakeTables {
                tables: BTreeMap::new(),
                root: pool,
                next: pool,
            };
            t.alloc();
            t
        }

        fn alloc(&mut self) -> u64 {
            let a = self.next;
            self.next += SIZE_4K;
            self.tables.insert(a, [0; 512]);
            a
        }

        /// The table below entry `i` of `table`, made if missing.
        fn child(&mut self, table: u64, i: usize) -> u64 {
            let e = self.tables[&table][i];
            if e & PRESENT != 0 {
                return e & ADDR_MASK;
            }
            let c = self.alloc();
            self.tables.get_mut(&table).unwrap()[i] = c | PRESENT | WRITABLE;
            c
        }

        /// Maps one page of `size` at `va` to `pa` with extra entry `flags`.
        pub fn map(&mut self, va: u64, pa: u64, size: u64, flags: u64) {
            let leaf_level = match size {
                SIZE_4K => 1,
                SIZE_2M => 2,
                SIZE_1G => 3,
                _ => panic!("bad size"),
            };
            let mut table = self.root;
            for level in (leaf_level + 1..=4).rev() {
                table = self.child(table, index(va, level));
            }
            let huge = if size > SIZE_4K { HUGE } else { 0 };
            self.tables.get_mut(&table).unwrap()[index(va, leaf_level)] =
                pa | PRESENT | huge | flags;
        }

        /// Identity-maps `[start, end)` with pages of `size`.
        pub fn identity(&mut self, start: u64, end: u64, size: u64, flags: u64) {
            let mut va = start;
            while va < end {
                self.map(va, va, size, flags);
                va += size;
            }
        }

        /// Sets `PML4[511]` to point at the PML4.
        pub fn recursive(&mut self) {
            let root = self.root;
            self.tables.get_mut(&root).unwrap()[511] = root | PRESENT | WRITABLE;
        }

        /// Sets an entry by hand.
        pub fn set(&mut self, table: u64, index: usize, value: u64) {
            self.tables.get_mut(&table).unwrap()[index] = value;
        }
    }

    /// This loader's layout for a kernel at 2 MiB..`kernel_end`, tables at 1 MiB+:
    /// MBI page 0x9000 read-only, 4 KiB pages 1–2 MiB, 2 MiB pages up to the kernel's
    /// end rounded up to 2 MiB, `PML4[511]` recursive.
    pub fn loader_layout(kernel_end: u64) -> FakeTables {
        let mut t = FakeTables::new(0x10_0000 + 0x8000);
        t.map(0x9000, 0x9000, SIZE_4K, 0);
        t.identity(0x10_0000, 0x20_0000, SIZE_4K, WRITABLE);
        let end = (kernel_end + SIZE_2M - 1) & !(SIZE_2M - 1);
        t.identity(0x20_0000, end, SIZE_2M, WRITABLE);
        t.recursive();
        t
    }
}

#[cfg(test)]
mod tests {
    use super::fake::*;
    use super::*;

    const KERNEL_END: u64 = 0x43_2100;
    const ALIGNED_END: u64 = 0x60_0000;

    #[test]
    fn index_span_canonical() {
        assert_eq!(index(0xffff_ffff_ffff_f000, 4), 511);
        assert_eq!(index(0x20_1000, 1), 1);
        assert_eq!(index(0x20_1000, 2), 1);
        assert_eq!(entry_span(2), SIZE_2M);
        assert_eq!(entry_span(4), 1 << 39);
        assert_eq!(canonical(0xffff_ffff_f000), 0xffff_ffff_ffff_f000);
        assert_eq!(canonical(0x7fff_ffff_f000), 0x7fff_ffff_f000);
    }

    #[test]
    fn translate_pages_of_each_size() {
        let mut t = FakeTables::new(0x100_0000);
        t.map(0x1000, 0x5000, SIZE_4K, WRITABLE);
        t.map(0x40_0000, 0x80_0000, SIZE_2M, 0);
        t.map(0x8000_0000, 0x4000_0000, SIZE_1G, WRITABLE | NO_EXECUTE);
        let m = translate(&t, t.root, 0x1234).unwrap();
        assert_eq!(
            (m.virt, m.size, m.translate(0x1234), m.writable),
            (0x1000, SIZE_4K, 0x5234, true)
        );
        let m = translate(&t, t.root, 0x41_2345).unwrap();
        assert_eq!(
            (m.virt, m.size, m.translate(0x41_2345), m.writable),
            (0x40_0000, SIZE_2M, 0x81_2345, false)
        );
        let m = translate(&t, t.root, 0x8000_1000).unwrap();
        assert_eq!((m.size, m.phys, m.no_execute), (SIZE_1G, 0x4000_0000, true));
        assert_eq!(translate(&t, t.root, 0x2000), None);
        assert_eq!(translate(&t, t.root, 0), None);
    }

    #[test]
    fn large_page_frames_ignore_the_pat_bit() {
        let mut t = FakeTables::new(0x100_0000);
        // Bit 12 of a large-page entry is PAT, not an address bit.
        t.map(0x20_0000, 0x20_0000 | (1 << 12), SIZE_2M, WRITABLE);
        assert_eq!(
            translate(&t, t.root, 0x20_0010)
                .unwrap()
                .translate(0x20_0010),
            0x20_0010
        );
    }

    #[test]
    fn first_mapping_skips_holes_and_sees_covering_large_pages() {
        let mut t = FakeTables::new(0x100_0000);
        t.map(0xe_0000 & !(SIZE_4K - 1), 0xe_0000, SIZE_4K, 0);
        t.map(0x40_0000, 0x40_0000, SIZE_2M, 0);
        t.map(0x80_0000_0000, 0x0, SIZE_4K, 0);
        assert_eq!(first_mapping_in(&t, t.root, 0, 0x1000), None);
        assert_eq!(
            first_mapping_in(&t, t.root, 0xe_0000, 0x10_0000)
                .unwrap()
                .virt,
            0xe_0000
        );
        // A range that starts inside the 2 MiB page is still covered by it.
        assert_eq!(
            first_mapping_in(&t, t.root, 0x50_0000, 0x50_1000)
                .unwrap()
                .virt,
            0x40_0000
        );
        assert_eq!(
            first_mapping_in(&t, t.root, 0x60_0000, LOWER_HALF_END)
                .unwrap()
                .virt,
            0x80_0000_0000
        );
        assert_eq!(
            first_mapping_in(&t, t.root, 0x60_0000, 0x80_0000_0000),
            None
        );
        assert_eq!(first_mapping_in(&t, t.root, 0x10, 0x10), None);
    }

    #[test]
    fn the_loader_layout_passes_every_rule() {
        let t = loader_layout(KERNEL_END);
        let cr3 = t.root | 0x18; // PWT/PCD bits in CR3 must not matter.
        check_identity(&t, cr3, "image", 0x20_0000, KERNEL_END, true).unwrap();
        check_identity(
            &t,
            cr3,
            "stack",
            0x10_8000 + 0x9000,
            0x10_8000 + 0x11000,
            true,
        )
        .unwrap();
        check_identity(&t, cr3, "mbi", 0x9500, 0x9600, false).unwrap();
        check_unmapped(&t, cr3, "page-0", 0, SIZE_4K).unwrap();
        check_unmapped(&t, cr3, "ebda", 0x9f000, 0xa0000).unwrap();
        check_unmapped(&t, cr3, "bios", 0xe0000, 0x10_0000).unwrap();
        check_unmapped(&t, cr3, "above", ALIGNED_END, LOWER_HALF_END).unwrap();
        check_no_large_page_at(&t, cr3, "smp", 0x8000).unwrap();
        check_recursive_entry(&t, cr3).unwrap();
        let s = survey(&t, cr3);
        assert_eq!(s.pages, [257, 2, 0]);
        assert_eq!(s.recursive[0], Some((4, 511)));
        assert_eq!(s.tables as usize, t.tables.len());
        check_survey(&s, false, true, true).unwrap();
        // The recursive entry makes the PML4 visible at its well-known address.
        let m = translate(&t, cr3, RECURSIVE_PML4).unwrap();
        assert_eq!(m.translate(RECURSIVE_PML4), t.root);
    }

    fn fails(r: Check, check: &str) {
        let f = r.expect_err("the check passed");
        assert_eq!((f.group, f.check), (Group::Paging, check), "{:?}", f.detail);
    }

    #[test]
    fn each_rule_catches_its_breakage() {
        let mut t = loader_layout(KERNEL_END);
        t.map(0x60_0000, 0x60_0000, SIZE_2M, WRITABLE);
        fails(
            check_unmapped(&t, t.root, "above", ALIGNED_END, LOWER_HALF_END),
            "above",
        );

        let mut t = loader_layout(KERNEL_END);
        t.map(0, 0, SIZE_2M, WRITABLE);
        fails(
            check_unmapped(&t, t.root, "bios", 0xe0000, 0x10_0000),
            "bios",
        );
        fails(check_no_large_page_at(&t, t.root, "smp", 0x8000), "smp");

        let mut t = loader_layout(KERNEL_END);
        t.map(0x30_0000, 0x50_0000, SIZE_2M, WRITABLE);
        fails(
            check_identity(&t, t.root, "image", 0x20_0000, KERNEL_END, true),
            "image",
        );

        let mut t = loader_layout(KERNEL_END);
        t.map(0x20_0000, 0x20_0000, SIZE_2M, 0);
        fails(
            check_identity(&t, t.root, "image", 0x20_0000, KERNEL_END, true),
            "image",
        );
        check_identity(&t, t.root, "image", 0x20_0000, KERNEL_END, false).unwrap();

        let mut t = loader_layout(KERNEL_END);
        let root = t.root;
        t.set(root, 511, 0);
        fails(check_recursive_entry(&t, root), "recursive-pml4");
        t.set(root, 511, (root + SIZE_4K) | PRESENT | WRITABLE);
        fails(check_recursive_entry(&t, root), "recursive-pml4");
        t.set(root, 511, root | PRESENT);
        fails(check_recursive_entry(&t, root), "recursive-pml4");

        let mut t = loader_layout(KERNEL_END);
        t.map(0x4000_0000, 0x4000_0000, SIZE_1G, WRITABLE);
        fails(
            check_survey(&survey(&t, t.root), false, true, true),
            "no-1gib-pages",
        );
        check_survey(&survey(&t, t.root), false, true, false).unwrap();

        let mut t = loader_layout(KERNEL_END);
        t.map(0x20_0000, 0x20_0000, SIZE_2M, WRITABLE | NO_EXECUTE);
        fails(
            check_survey(&survey(&t, t.root), false, true, true),
            "nx-without-nxe",
        );
        check_survey(&survey(&t, t.root), true, true, true).unwrap();

        let mut t = loader_layout(KERNEL_END);
        let root = t.root;
        t.set(root, 3, PRESENT | HUGE);
        fails(
            check_survey(&survey(&t, root), false, false, false),
            "pml4-ps-bit",
        );
    }

    #[test]
    fn tables_outside_the_identity_map_are_found() {
        // Tables placed at 64 MiB, which the layout does not map.
        let mut t = FakeTables::new(0x400_0000);
        t.identity(0x10_0000, 0x20_0000, SIZE_4K, WRITABLE);
        t.recursive();
        let s = survey(&t, t.root);
        assert_eq!(s.table_not_identity, Some((0x400_0000, None)));
        fails(
            check_survey(&s, false, true, true),
            "tables-identity-mapped",
        );
        // The older kernels do not need it.
        check_survey(&s, false, false, true).unwrap();
    }
}
