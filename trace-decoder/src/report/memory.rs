//! The physical memory map of a boot: the firmware's memory map, and everything the
//! loader placed in it, sorted by address, with warnings where two things share
//! memory that must not.
//!
//! The rule is "containment is fine where it is expected, any other overlap is a
//! warning": a region may lie inside usable RAM; the FDT, boot info, stack and page
//! tables may lie inside the loader image (that is where the loader keeps them); the
//! TLS image lies inside a kernel segment. Every other overlap, whether partial or a
//! whole region inside another, is a warning, and so is a placed region that is not
//! wholly inside usable RAM or that touches a non-usable memory-map entry.

use serde::Serialize;

use rusty_loader::bootinfo::BootInfoLayout;
use rusty_loader::wire::LoaderEvent;

use super::format::{hex, ser_hex};
use super::{first, Warning};
use crate::decode::{memory_map, Event};

/// The kernel's stack size, fixed by the Hermit boot ABI (the loader's own
/// definition).
pub const STACK_SIZE: u64 = rusty_loader::bootinfo::KERNEL_STACK_SIZE;

/// The boot info's size for the kernel's entry version (`Kernel.entry_version`),
/// as the loader lays it out.
fn boot_info_size(events: &[Event]) -> u64 {
    let version = first!(events, LoaderEvent::Kernel { entry_version, .. } => *entry_version);
    // Without a `Kernel` event the common layout is assumed.
    BootInfoLayout::for_entry_version(version.unwrap_or(4)).size()
}
/// The work the memory checks do, counted on the thread that does it: one step for
/// each comparison a sort or a binary search makes, each region a walk visits, each
/// update of the nesting counts. The tests pin a hostile memory map's work with it
/// (`trace-decoder/tests/regressions.rs`): a count, the same on any machine, where
/// a time would depend on the host.
pub mod work {
    use std::cell::Cell;

    thread_local! {
        static STEPS: Cell<u64> = const { Cell::new(0) };
    }

    /// Counts one step.
    pub(super) fn step() {
        STEPS.with(|steps| steps.set(steps.get().saturating_add(1)));
    }

    /// The steps counted on this thread so far.
    pub fn steps() -> u64 {
        STEPS.with(Cell::get)
    }
}

/// A page-table page, and the MBI page the hand-over page tables map.
pub const PAGE_SIZE: u64 = 4096;

/// What a region is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RegionKind {
    /// Memory-map kind 1.
    Usable,
    /// Memory-map kind 2.
    Reserved,
    /// Memory-map kind 3: ACPI tables, reclaimable.
    Acpi,
    /// Memory-map kind 4: ACPI non-volatile storage.
    Nvs,
    /// Memory-map kind 5: defective RAM.
    Bad,
    /// Any other memory-map kind.
    UnknownKind,
    /// The loader's own image.
    Loader,
    /// The page holding the Multiboot information.
    Mbi,
    /// Module 0, the application file.
    Module,
    /// One loaded kernel segment.
    Segment,
    /// The kernel's TLS image.
    Tls,
    /// The hand-over page tables.
    PageTables,
    /// The flattened device tree.
    Fdt,
    /// The `RawBootInfo`.
    BootInfo,
    /// The kernel's stack.
    Stack,
}

impl RegionKind {
    /// Whether the region is an entry of the firmware's memory map.
    pub fn is_memory_map(self) -> bool {
        matches!(
            self,
            RegionKind::Usable
                | RegionKind::Reserved
                | RegionKind::Acpi
                | RegionKind::Nvs
                | RegionKind::Bad
                | RegionKind::UnknownKind
        )
    }

    /// Whether `self` may contain a region of kind `inner` without a warning.
    fn may_contain(self, inner: RegionKind) -> bool {
        match self {
            // The MBI the loader writes (PVH, UEFI) lies on its heap; a firmware's
            // MBI inside the image the loader refuses itself.
            RegionKind::Loader => matches!(
                inner,
                RegionKind::Fdt
                    | RegionKind::BootInfo
                    | RegionKind::Stack
                    | RegionKind::PageTables
                    | RegionKind::Mbi
            ),
            RegionKind::Segment => inner == RegionKind::Tls,
            _ => false,
        }
    }

    /// Sort order among regions with the same range: containers first.
    fn layer(self) -> u8 {
        if self.is_memory_map() {
            0
        } else if matches!(
            self,
            RegionKind::Tls
                | RegionKind::PageTables
                | RegionKind::Fdt
                | RegionKind::BootInfo
                | RegionKind::Stack
        ) {
            2
        } else {
            1
        }
    }
}

/// One region of physical memory, `[start, end)`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Region {
    /// What it is.
    pub kind: RegionKind,
    /// What a person reads, e.g. `segment 2 R-X`.
    pub name: String,
    /// First byte, as a `0x` hex string in JSON.
    #[serde(serialize_with = "ser_hex")]
    pub start: u64,
    /// The byte after the last, as a `0x` hex string in JSON.
    #[serde(serialize_with = "ser_hex")]
    pub end: u64,
    /// `end - start` in bytes.
    pub size: u64,
    /// How many other regions contain this one (for indenting).
    pub depth: u32,
}

impl Region {
    fn new(kind: RegionKind, name: String, start: u64, end: u64) -> Region {
        let end = end.max(start);
        Region {
            kind,
            name,
            start,
            end,
            size: end - start,
            depth: 0,
        }
    }

    fn sized(kind: RegionKind, name: String, start: u64, size: u64) -> Region {
        Region::new(kind, name, start, start.saturating_add(size))
    }

    fn contains(&self, other: &Region) -> bool {
        self.start <= other.start && other.end <= self.end
    }
}

/// The name of a memory-map kind.
fn memory_kind(kind: Option<u64>) -> (RegionKind, String) {
    match kind {
        Some(1) => (RegionKind::Usable, "usable RAM".into()),
        Some(2) => (RegionKind::Reserved, "reserved".into()),
        Some(3) => (RegionKind::Acpi, "ACPI reclaimable".into()),
        Some(4) => (RegionKind::Nvs, "ACPI NVS".into()),
        Some(5) => (RegionKind::Bad, "bad memory".into()),
        Some(other) => (RegionKind::UnknownKind, format!("memory kind {other}")),
        None => (RegionKind::UnknownKind, "memory kind ?".into()),
    }
}

/// Segment flags as `RWX` letters (PF_R 4, PF_W 2, PF_X 1).
fn flags(flags: u64) -> String {
    [(4, 'R'), (2, 'W'), (1, 'X')]
        .iter()
        .map(|&(bit, c)| if flags & bit != 0 { c } else { '-' })
        .collect()
}

/// Every region the events and the loader image name, sorted by address
/// (containers before what they contain), with nesting depths.
pub fn regions(events: &[Event], loader_image: Option<(u64, u64)>) -> Vec<Region> {
    let mut out = Vec::new();
    if let Some((start, end)) = loader_image {
        out.push(Region::new(
            RegionKind::Loader,
            "loader image".into(),
            start,
            end,
        ));
    }
    for entry in memory_map(events) {
        // An empty entry (microvm's firmware lists one at 0) describes no memory.
        if entry.end <= entry.start {
            continue;
        }
        let (kind, name) = memory_kind(Some(u64::from(entry.kind)));
        out.push(Region::new(kind, name, entry.start, entry.end));
    }
    out.extend(placed(events));
    out.sort_by(|a, b| {
        work::step();
        (a.start, std::cmp::Reverse(a.end), a.kind.layer()).cmp(&(
            b.start,
            std::cmp::Reverse(b.end),
            b.kind.layer(),
        ))
    });
    let depths = nesting_depths(&out);
    for (region, depth) in out.iter_mut().zip(depths) {
        region.depth = depth;
    }
    out
}

/// The regions the loader placed (or was given), as its events name them.
fn placed(events: &[Event]) -> Vec<Region> {
    let mut out = Vec::new();
    let mut once = std::collections::HashSet::new();
    let mut segments = 0;
    // After a PVH entry, EBX (in `LoaderStart`) held the start info, not an MBI.
    let entry = |name: &str| {
        events
            .iter()
            .any(|e| matches!(&e.kind, LoaderEvent::Entry { protocol } if protocol == name))
    };
    let pvh = entry("pvh");
    // After a UEFI entry `LoaderStart` holds 0: no firmware MBI.
    let uefi = entry("uefi");
    for e in events {
        // Single-shot events are taken once: a repeated one in a damaged stream must
        // not add phantom regions.
        let segment = matches!(e.kind, LoaderEvent::SegmentLoaded { .. });
        if !segment && !once.insert(std::mem::discriminant(&e.kind)) {
            continue;
        }
        if segment {
            // Segments are numbered from 1 in the order they were loaded (the order
            // of their PT_LOAD headers).
            segments += 1;
        }
        if uefi && matches!(e.kind, LoaderEvent::LoaderStart { .. }) {
            continue;
        }
        out.extend(placed_by(&e.kind, pvh, segments, || boot_info_size(events)));
    }
    out
}

/// The regions one event names: `segment` is a segment's number, `pvh` whether the
/// loader was entered through PVH, `boot_info_size` the boot info's size.
fn placed_by(
    kind: &LoaderEvent,
    pvh: bool,
    segment: usize,
    boot_info_size: impl Fn() -> u64,
) -> Vec<Region> {
    let sized = |kind, name: &str, start, size| vec![Region::sized(kind, name.into(), start, size)];
    match kind {
        LoaderEvent::LoaderStart { mbi, .. } => {
            let page = u64::from(*mbi) & !(PAGE_SIZE - 1);
            let name = if pvh {
                "PVH start info page"
            } else {
                "MBI page"
            };
            sized(RegionKind::Mbi, name, page, PAGE_SIZE)
        }
        LoaderEvent::MbiBuilt { addr, size } => sized(
            RegionKind::Mbi,
            "MBI written by the loader",
            u64::from(*addr),
            u64::from(*size),
        ),
        LoaderEvent::Module { start, end } => vec![Region::new(
            RegionKind::Module,
            "module (application)".into(),
            *start,
            *end,
        )],
        LoaderEvent::SegmentLoaded {
            addr,
            memsz,
            flags: f,
            ..
        } => {
            let name = format!("segment {segment} {}", flags(u64::from(*f)));
            sized(RegionKind::Segment, &name, *addr, *memsz)
        }
        LoaderEvent::Tls { start, memsz, .. } => {
            sized(RegionKind::Tls, "TLS image", *start, *memsz)
        }
        LoaderEvent::PageTables { pml4, tables, .. } => {
            // The tables come from an arena that starts with the PML4.
            let name = format!("page tables ({tables} pages)");
            let size = u64::from(*tables).saturating_mul(PAGE_SIZE);
            sized(RegionKind::PageTables, &name, *pml4, size)
        }
        LoaderEvent::DeviceTree { addr, size, .. } => {
            sized(RegionKind::Fdt, "device tree", *addr, u64::from(*size))
        }
        LoaderEvent::HandOver { rdi, rsp, .. } => vec![
            Region::sized(
                RegionKind::BootInfo,
                "boot info".into(),
                *rdi,
                boot_info_size(),
            ),
            Region::sized(RegionKind::Stack, "kernel stack".into(), *rsp, STACK_SIZE),
        ],
        _ => Vec::new(),
    }
}

/// How many earlier regions of non-zero size contain each region of a list sorted by
/// start.
///
/// An earlier region starts at or before a later one, so it contains the later one
/// exactly when it also ends at or after it: each depth is a count of earlier ends
/// at or above this region's end. A Fenwick tree over the distinct ends keeps that
/// count, so a list of n regions costs O(n log n). (Comparing every pair cost
/// n²/2 steps: seconds for a memory map of a few thousand entries.)
fn nesting_depths(regions: &[Region]) -> Vec<u32> {
    let mut ends: Vec<u64> = regions.iter().map(|r| r.end).collect();
    ends.sort_unstable_by(|a, b| {
        work::step();
        a.cmp(b)
    });
    ends.dedup();
    let mut earlier_ends = Fenwick::new(ends.len());
    let mut counted = 0usize;
    regions
        .iter()
        .map(|region| {
            let rank = ends.partition_point(|&end| {
                work::step();
                end < region.end
            });
            let depth = counted - earlier_ends.count_below(rank);
            if region.size > 0 {
                earlier_ends.add(rank);
                counted += 1;
            }
            u32::try_from(depth).unwrap_or(u32::MAX)
        })
        .collect()
}

/// Counts of values by rank, with the count below a rank in O(log n).
struct Fenwick {
    tree: Vec<usize>,
}

impl Fenwick {
    fn new(ranks: usize) -> Fenwick {
        Fenwick {
            tree: vec![0; ranks + 1],
        }
    }

    /// Counts one value of rank `rank`.
    fn add(&mut self, rank: usize) {
        let mut at = rank + 1;
        while at < self.tree.len() {
            work::step();
            self.tree[at] += 1;
            at += at & at.wrapping_neg();
        }
    }

    /// How many counted values have a rank below `rank`.
    fn count_below(&self, rank: usize) -> usize {
        let mut sum = 0;
        let mut at = rank;
        while at > 0 {
            work::step();
            sum += self.tree[at];
            at -= at & at.wrapping_neg();
        }
        sum
    }
}

/// At most this many warnings of one kind are listed one by one; one more warning
/// says how many others there are. A hostile trace can make every pair of regions
/// overlap, and a report that listed them all would grow with the square of the
/// trace.
pub const LISTED_WARNINGS: usize = 20;

/// The warnings about a list of regions sorted by start (as [`regions`] returns
/// it): overlaps that must not be, and placed regions outside usable RAM. Each names
/// the regions by index; past [`LISTED_WARNINGS`] of a kind, one warning counts the
/// rest and names every region they concern.
///
/// The work is O(n log n) for n regions, plus n for each region of a kind that
/// others may hold (TLS, FDT, boot info, stack, page tables: at most five in a
/// report, each from a single-shot event); it never depends on how many pairs
/// overlap.
pub fn check(regions: &[Region]) -> Vec<Warning> {
    let mut warnings = overlaps(regions);
    if regions.iter().any(|r| r.kind.is_memory_map()) {
        warnings.extend(outside_ram(regions));
    }
    warnings
}

fn describe(r: &Region) -> String {
    format!("{} [{}, {})", r.name, hex(r.start), hex(r.end))
}

/// Whether a region of kind `inner` inside one of kind `outer` is as expected.
fn expected_inside(outer: &Region, inner: &Region) -> bool {
    outer.contains(inner) && outer.kind.may_contain(inner.kind)
}

/// The `overlap` warnings: pairs of non-empty regions of the same side (memory map,
/// or placed by the loader) that share memory, unless one holds the other as
/// expected. Listed in index order of the pair, like a walk over every pair would.
fn overlaps(regions: &[Region]) -> Vec<Warning> {
    // Overlaps are only looked for on one side at a time: a placed region against
    // the memory map is `outside_ram`'s business.
    let (map, placed): (Vec<usize>, Vec<usize>) = (0..regions.len())
        .filter(|&i| regions[i].size > 0)
        .partition(|&i| regions[i].kind.is_memory_map());
    let mut total = 0usize;
    let mut unexpected = vec![0usize; regions.len()];
    let mut listed = Vec::new();
    for side in [&map, &placed] {
        total += count_unexpected(regions, side, &mut unexpected);
        listed.extend(first_unexpected(regions, side, LISTED_WARNINGS));
    }
    listed.sort_unstable();
    listed.truncate(LISTED_WARNINGS);

    let mut warnings: Vec<Warning> = listed
        .iter()
        .map(|&(i, j)| {
            let (a, b) = (&regions[i], &regions[j]);
            let what = if a.kind.is_memory_map() {
                "memory-map entries overlap"
            } else if a.contains(b) || b.contains(a) {
                "one region lies inside another that should not hold it"
            } else {
                "regions overlap"
            };
            Warning {
                kind: "overlap",
                message: format!("{what}: {} and {}", describe(a), describe(b)),
                regions: vec![i, j],
            }
        })
        .collect();
    if total > listed.len() {
        // A region takes part in an overlap that is not listed when it overlaps more
        // regions than the listed pairs name it in.
        let mut named = vec![0usize; regions.len()];
        for &(i, j) in &listed {
            named[i] += 1;
            named[j] += 1;
        }
        let rest: Vec<usize> = (0..regions.len())
            .filter(|&i| unexpected[i] > named[i])
            .collect();
        warnings.push(Warning {
            kind: "overlap",
            message: format!(
                "… and {} more overlaps, not listed one by one",
                total - listed.len()
            ),
            regions: rest,
        });
    }
    warnings
}

/// Counts the pairs of `side` (indexes of non-empty regions, ascending, so sorted
/// by start) that overlap against the rule, and adds to `per_region` how many such
/// partners each region has. O(n log n + n·k) for n regions of which k may be held
/// by another, however many pairs overlap.
fn count_unexpected(regions: &[Region], side: &[usize], per_region: &mut [usize]) -> usize {
    let mut starts: Vec<u64> = side.iter().map(|&i| regions[i].start).collect();
    let mut ends: Vec<u64> = side.iter().map(|&i| regions[i].end).collect();
    for sorted in [&mut starts, &mut ends] {
        sorted.sort_unstable_by(|a, b| {
            work::step();
            a.cmp(b)
        });
    }
    // Two non-empty regions share memory when each starts before the other ends. So
    // the regions sharing memory with `r` are those starting before its end, less
    // those that end at or before its start (which start before its end too), less
    // `r` itself.
    let mut partners = 0usize;
    for &i in side {
        let r = &regions[i];
        let starting_before = starts.partition_point(|&s| {
            work::step();
            s < r.end
        });
        let ending_before = ends.partition_point(|&e| {
            work::step();
            e <= r.start
        });
        let overlapping = starting_before - ending_before - 1;
        per_region[i] += overlapping;
        partners += overlapping;
    }
    // Each pair was counted from both ends; the expected ones are taken out again.
    let mut pairs = partners / 2;
    for &inner in side {
        if !may_be_held(regions[inner].kind) {
            continue;
        }
        for &outer in side {
            work::step();
            if outer != inner && expected_inside(&regions[outer], &regions[inner]) {
                pairs -= 1;
                per_region[inner] -= 1;
                per_region[outer] -= 1;
            }
        }
    }
    pairs
}

/// Whether regions of some kind may hold a region of kind `kind`.
fn may_be_held(kind: RegionKind) -> bool {
    [RegionKind::Loader, RegionKind::Segment]
        .iter()
        .any(|outer| outer.may_contain(kind))
}

/// The first `limit` pairs `(i, j)`, `i < j`, of `side` (as for
/// [`count_unexpected`]) that overlap against the rule, in index order. Sorted by
/// start, the regions that share memory with region `i` and come after it are the
/// run that starts before `i` ends: each step of the walk finds a pair, or one of the
/// few expected ones, or ends a run.
fn first_unexpected(regions: &[Region], side: &[usize], limit: usize) -> Vec<(usize, usize)> {
    let mut pairs = Vec::new();
    for (at, &i) in side.iter().enumerate() {
        work::step();
        let a = &regions[i];
        for &j in &side[at + 1..] {
            work::step();
            let b = &regions[j];
            if b.start >= a.end {
                break;
            }
            if expected_inside(a, b) || expected_inside(b, a) {
                continue;
            }
            if pairs.len() == limit {
                return pairs;
            }
            pairs.push((i, j));
        }
    }
    pairs
}

/// The `outside-ram` warnings: a placed region that is not wholly inside usable RAM
/// (adjacent usable entries count as one), or that touches a non-usable memory-map
/// entry. Each region is one binary search in the merged usable RAM and one in the
/// non-usable entries: O(n log n).
fn outside_ram(regions: &[Region]) -> Vec<Warning> {
    let map = MapIndex::of(regions);
    let mut listed = Vec::new();
    let mut omitted = 0usize;
    let mut concerned = Vec::new();
    for (i, r) in regions.iter().enumerate() {
        work::step();
        if r.kind.is_memory_map() || r.size == 0 {
            continue;
        }
        let (touched, named) = if !map.covered(r) {
            (None, vec![i])
        } else if let Some(m) = map.first_not_usable(regions, r) {
            (Some(m), vec![i, m])
        } else {
            continue;
        };
        if listed.len() == LISTED_WARNINGS {
            omitted += 1;
            concerned.extend(named);
            continue;
        }
        let message = match touched {
            None => format!("{} is not wholly inside usable RAM", describe(r)),
            Some(m) => format!("{} overlaps {}", describe(r), describe(&regions[m])),
        };
        listed.push(Warning {
            kind: "outside-ram",
            message,
            regions: named,
        });
    }
    if omitted > 0 {
        concerned.sort_unstable();
        concerned.dedup();
        listed.push(Warning {
            kind: "outside-ram",
            message: format!(
                "… and {omitted} more regions outside usable RAM or touching reserved memory, not listed one by one"
            ),
            regions: concerned,
        });
    }
    listed
}

/// The memory map of a list of regions sorted by start, ready for binary searches.
struct MapIndex {
    /// Usable RAM, entries that overlap or touch merged into one stretch.
    usable: Vec<(u64, u64)>,
    /// The indexes of the non-usable entries, in index order, so by start.
    not_usable: Vec<usize>,
    /// The highest end among the first of them: the first entry that reaches past
    /// an address is where this running maximum first does.
    reach: Vec<u64>,
}

impl MapIndex {
    fn of(regions: &[Region]) -> MapIndex {
        let mut usable: Vec<(u64, u64)> = regions
            .iter()
            .filter(|r| r.kind == RegionKind::Usable && r.size > 0)
            .map(|r| (r.start, r.end))
            .collect();
        usable.sort_unstable_by(|a, b| {
            work::step();
            a.cmp(b)
        });
        usable.dedup_by(|next, stretch| {
            let joins = next.0 <= stretch.1;
            if joins {
                stretch.1 = stretch.1.max(next.1);
            }
            joins
        });
        let not_usable: Vec<usize> = (0..regions.len())
            .filter(|&m| regions[m].kind.is_memory_map() && regions[m].kind != RegionKind::Usable)
            .collect();
        let reach = not_usable
            .iter()
            .scan(0u64, |highest, &m| {
                *highest = (*highest).max(regions[m].end);
                Some(*highest)
            })
            .collect();
        MapIndex {
            usable,
            not_usable,
            reach,
        }
    }

    /// Whether `r` lies wholly inside one stretch of usable RAM.
    fn covered(&self, r: &Region) -> bool {
        let below = self.usable.partition_point(|&(start, _)| {
            work::step();
            start <= r.start
        });
        below > 0 && self.usable[below - 1].1 >= r.end
    }

    /// The first non-usable entry that shares memory with `r`: among those starting
    /// before its end, the first that ends after its start.
    fn first_not_usable(&self, regions: &[Region], r: &Region) -> Option<usize> {
        let starting_before = self.not_usable.partition_point(|&m| {
            work::step();
            regions[m].start < r.end
        });
        let first = self.reach.partition_point(|&end| {
            work::step();
            end <= r.start
        });
        (first < starting_before).then(|| self.not_usable[first])
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// The rule as first written: every pair compared. The sweeps above must say the
    /// same, in the same order, up to the listing limit.
    mod pairwise {
        use super::*;

        fn intersects(a: &Region, b: &Region) -> bool {
            a.start < b.end && b.start < a.end
        }

        pub fn depths(regions: &[Region]) -> Vec<u32> {
            (0..regions.len())
                .map(|i| {
                    regions[..i]
                        .iter()
                        .filter(|outer| outer.size > 0 && outer.contains(&regions[i]))
                        .count() as u32
                })
                .collect()
        }

        /// Every warning, none summarised.
        pub fn check(regions: &[Region]) -> Vec<Warning> {
            let mut warnings = Vec::new();
            let has_memory_map = regions.iter().any(|r| r.kind.is_memory_map());
            for (i, a) in regions.iter().enumerate() {
                if a.size == 0 {
                    continue;
                }
                for (j, b) in regions.iter().enumerate().skip(i + 1) {
                    if b.size == 0 || !intersects(a, b) {
                        continue;
                    }
                    let map_a = a.kind.is_memory_map();
                    if map_a != b.kind.is_memory_map() {
                        continue;
                    }
                    let expected = (a.contains(b) && a.kind.may_contain(b.kind))
                        || (b.contains(a) && b.kind.may_contain(a.kind));
                    if !expected {
                        let what = if map_a {
                            "memory-map entries overlap"
                        } else if a.contains(b) || b.contains(a) {
                            "one region lies inside another that should not hold it"
                        } else {
                            "regions overlap"
                        };
                        warnings.push(Warning {
                            kind: "overlap",
                            message: format!("{what}: {} and {}", describe(a), describe(b)),
                            regions: vec![i, j],
                        });
                    }
                }
            }
            if has_memory_map {
                let mut usable: Vec<&Region> = regions
                    .iter()
                    .filter(|r| r.kind == RegionKind::Usable && r.size > 0)
                    .collect();
                usable.sort_by_key(|r| r.start);
                let covered = |start: u64, end: u64| {
                    let mut reached = start;
                    for r in &usable {
                        if r.start > reached {
                            break;
                        }
                        reached = reached.max(r.end);
                    }
                    reached >= end
                };
                for (i, r) in regions.iter().enumerate() {
                    if r.kind.is_memory_map() || r.size == 0 {
                        continue;
                    }
                    let not_usable = regions.iter().position(|m| {
                        m.kind.is_memory_map() && m.kind != RegionKind::Usable && intersects(m, r)
                    });
                    if !covered(r.start, r.end) {
                        warnings.push(Warning {
                            kind: "outside-ram",
                            message: format!("{} is not wholly inside usable RAM", describe(r)),
                            regions: vec![i],
                        });
                    } else if let Some(m) = not_usable {
                        warnings.push(Warning {
                            kind: "outside-ram",
                            message: format!("{} overlaps {}", describe(r), describe(&regions[m])),
                            regions: vec![i, m],
                        });
                    }
                }
            }
            warnings
        }
    }

    const KINDS: [RegionKind; 15] = [
        RegionKind::Usable,
        RegionKind::Reserved,
        RegionKind::Acpi,
        RegionKind::Nvs,
        RegionKind::Bad,
        RegionKind::UnknownKind,
        RegionKind::Loader,
        RegionKind::Mbi,
        RegionKind::Module,
        RegionKind::Segment,
        RegionKind::Tls,
        RegionKind::PageTables,
        RegionKind::Fdt,
        RegionKind::BootInfo,
        RegionKind::Stack,
    ];

    /// Region lists as `regions` sorts them, crowded into a small address range so
    /// that overlaps, containments, shared ends and empty regions are common.
    fn sorted_regions() -> impl Strategy<Value = Vec<Region>> {
        proptest::collection::vec((0..KINDS.len(), 0u64..96, 0u64..40), 0..40).prop_map(|specs| {
            let mut regions: Vec<Region> = specs
                .into_iter()
                .enumerate()
                .map(|(n, (kind, start, size))| {
                    Region::sized(KINDS[kind], format!("r{n}"), start, size)
                })
                .collect();
            regions.sort_by(|a, b| {
                (a.start, std::cmp::Reverse(a.end), a.kind.layer()).cmp(&(
                    b.start,
                    std::cmp::Reverse(b.end),
                    b.kind.layer(),
                ))
            });
            regions
        })
    }

    /// `all` as `check` lists it: the first [`LISTED_WARNINGS`], then one warning
    /// with the count of the rest and every region they name.
    fn listed(all: Vec<Warning>, kind: &'static str) -> Vec<Warning> {
        let mut of_kind: Vec<Warning> = all.into_iter().filter(|w| w.kind == kind).collect();
        if of_kind.len() > LISTED_WARNINGS {
            let rest = of_kind.split_off(LISTED_WARNINGS);
            let mut regions: Vec<usize> = rest.iter().flat_map(|w| w.regions.clone()).collect();
            regions.sort_unstable();
            regions.dedup();
            of_kind.push(Warning {
                kind,
                message: format!("{} more", rest.len()),
                regions,
            });
        }
        of_kind
    }

    /// A summary's message reduced to its count, for comparing with [`listed`].
    fn comparable(mut warnings: Vec<Warning>) -> Vec<Warning> {
        for w in &mut warnings {
            if let Some(rest) = w.message.strip_prefix("… and ") {
                let count = rest.split(' ').next().unwrap_or("");
                w.message = format!("{count} more");
            }
        }
        warnings
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn sweeps_agree_with_comparing_every_pair(regions in sorted_regions()) {
            prop_assert_eq!(nesting_depths(&regions), pairwise::depths(&regions));
            let expected: Vec<Warning> = ["overlap", "outside-ram"]
                .into_iter()
                .flat_map(|kind| listed(pairwise::check(&regions), kind))
                .collect();
            prop_assert_eq!(comparable(check(&regions)), expected);
        }
    }

    #[test]
    fn only_two_kinds_hold_others() {
        for outer in KINDS {
            for inner in KINDS {
                if outer.may_contain(inner) {
                    assert!(matches!(outer, RegionKind::Loader | RegionKind::Segment));
                    assert!(may_be_held(inner));
                }
            }
        }
    }
}
