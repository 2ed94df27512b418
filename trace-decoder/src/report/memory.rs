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
            RegionKind::Loader => matches!(
                inner,
                RegionKind::Fdt | RegionKind::BootInfo | RegionKind::Stack | RegionKind::PageTables
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

    fn intersects(&self, other: &Region) -> bool {
        self.start < other.end && other.start < self.end
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
    let mut once = std::collections::HashSet::new();
    let mut segments = 0;
    // After a PVH entry, EBX (in `LoaderStart`) held the start info, not an MBI.
    let pvh = events
        .iter()
        .any(|e| matches!(&e.kind, LoaderEvent::Entry { protocol } if protocol == "pvh"));
    for e in events {
        // Single-shot events are taken once: a repeated one in a damaged stream must
        // not add phantom regions.
        let segment = matches!(e.kind, LoaderEvent::SegmentLoaded { .. });
        if !segment && !once.insert(std::mem::discriminant(&e.kind)) {
            continue;
        }
        match &e.kind {
            LoaderEvent::LoaderStart { mbi, .. } => {
                let page = u64::from(*mbi) & !(PAGE_SIZE - 1);
                let name = if pvh {
                    "PVH start info page"
                } else {
                    "MBI page"
                };
                out.push(Region::sized(RegionKind::Mbi, name.into(), page, PAGE_SIZE));
            }
            LoaderEvent::MbiBuilt { addr, size } => {
                out.push(Region::sized(
                    RegionKind::Mbi,
                    "MBI written by the loader".into(),
                    u64::from(*addr),
                    u64::from(*size),
                ));
            }
            LoaderEvent::Module { start, end } => {
                out.push(Region::new(
                    RegionKind::Module,
                    "module (application)".into(),
                    *start,
                    *end,
                ));
            }
            LoaderEvent::SegmentLoaded {
                addr,
                memsz,
                flags: f,
                ..
            } => {
                // Segments are numbered from 1 in the order they were loaded (the
                // order of their PT_LOAD headers).
                segments += 1;
                let name = format!("segment {segments} {}", flags(u64::from(*f)));
                out.push(Region::sized(RegionKind::Segment, name, *addr, *memsz));
            }
            LoaderEvent::Tls { start, memsz, .. } => {
                out.push(Region::sized(
                    RegionKind::Tls,
                    "TLS image".into(),
                    *start,
                    *memsz,
                ));
            }
            LoaderEvent::PageTables { pml4, tables, .. } => {
                // The tables come from an arena that starts with the PML4.
                let name = format!("page tables ({tables} pages)");
                out.push(Region::sized(
                    RegionKind::PageTables,
                    name,
                    *pml4,
                    u64::from(*tables).saturating_mul(PAGE_SIZE),
                ));
            }
            LoaderEvent::DeviceTree { addr, size, .. } => {
                out.push(Region::sized(
                    RegionKind::Fdt,
                    "device tree".into(),
                    *addr,
                    u64::from(*size),
                ));
            }
            LoaderEvent::HandOver { rdi, rsp, .. } => {
                out.push(Region::sized(
                    RegionKind::BootInfo,
                    "boot info".into(),
                    *rdi,
                    boot_info_size(events),
                ));
                out.push(Region::sized(
                    RegionKind::Stack,
                    "kernel stack".into(),
                    *rsp,
                    STACK_SIZE,
                ));
            }
            _ => {}
        }
    }
    out.sort_by(|a, b| {
        (a.start, std::cmp::Reverse(a.end), a.kind.layer()).cmp(&(
            b.start,
            std::cmp::Reverse(b.end),
            b.kind.layer(),
        ))
    });
    for i in 0..out.len() {
        let depth = out[..i]
            .iter()
            .filter(|outer| outer.size > 0 && outer.contains(&out[i]))
            .count();
        out[i].depth = depth as u32;
    }
    out
}

/// The warnings about a sorted region list: overlaps that must not be, and placed
/// regions outside usable RAM. Each names the regions by index.
pub fn check(regions: &[Region]) -> Vec<Warning> {
    let mut warnings = Vec::new();
    let describe = |r: &Region| format!("{} [{}, {})", r.name, hex(r.start), hex(r.end));
    let has_memory_map = regions.iter().any(|r| r.kind.is_memory_map());
    let mut usable: Vec<&Region> = regions
        .iter()
        .filter(|r| r.kind == RegionKind::Usable && r.size > 0)
        .collect();
    usable.sort_by_key(|r| r.start);

    for (i, a) in regions.iter().enumerate() {
        if a.size == 0 {
            continue;
        }
        for (j, b) in regions.iter().enumerate().skip(i + 1) {
            if b.size == 0 || !a.intersects(b) {
                continue;
            }
            let map_a = a.kind.is_memory_map();
            let map_b = b.kind.is_memory_map();
            if map_a != map_b {
                // A placed region against the memory map: handled below.
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
        for (i, r) in regions.iter().enumerate() {
            if r.kind.is_memory_map() || r.size == 0 {
                continue;
            }
            let not_usable = regions.iter().position(|m| {
                m.kind.is_memory_map() && m.kind != RegionKind::Usable && m.intersects(r)
            });
            if !covered(&usable, r.start, r.end) {
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

/// Whether `[start, end)` is covered by the union of the sorted usable regions
/// (adjacent ones count as one).
fn covered(usable: &[&Region], start: u64, end: u64) -> bool {
    let mut reached = start;
    for r in usable {
        if r.start > reached {
            break;
        }
        reached = reached.max(r.end);
        if reached >= end {
            return true;
        }
    }
    reached >= end
}
