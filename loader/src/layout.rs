//! Where the kernel goes in physical memory, and what the hand-over page tables map.
//!
//! One layout serves every Hermit kernel generation (0.6–0.13 and later):
//!
//! - Kernels give all RAM above their image to their frame allocator, so everything
//!   the kernel still reads after the hand-over (the loader image with the page
//!   tables, stack, boot info, FDT and GDT; the MBI; QEMU's command-line buffer)
//!   must lie below the kernel.
//! - Kernels 0.6–0.10 fail on any existing mapping at or above the kernel's end
//!   rounded up to 2 MiB, so nothing is mapped there.
//! - Kernels with ACPI fail if page 0, the EBDA or 0xE0000–0xFFFFF is mapped, and SMP
//!   kernels up to 0.13.2 fail if a huge page covers the trampoline page at 0x8000,
//!   so below 1 MiB only the MBI page(s) are mapped, with 4 KiB pages.
//! - Only 4 KiB and 2 MiB pages are used (kernel 0.11.0 panics on 1 GiB pages).
//!
//! [`plan_layout`] checks the inputs against these rules and returns the kernel's
//! place and the identity mappings for [`crate::paging::build_page_tables`].

use alloc::vec::Vec;

use crate::error::LoadError;
use crate::memory::{Region, UsableRam};
use x86_64::structures::paging::PageTable;

use crate::paging::{build_page_tables, Mapping, PageSize, PageTableStats, IDENTITY_LIMIT};

/// The lowest address a relocatable kernel is placed at (as loader v0.5.6 does).
pub const KERNEL_MIN_BASE: u64 = 0x80_0000;
/// The size of a huge (2 MiB) page.
pub const HUGE_PAGE: u64 = 0x20_0000;
/// The size of a small page.
const PAGE: u64 = 0x1000;
/// Below this address only the MBI page(s) may be mapped.
const ONE_MIB: u64 = 0x10_0000;
/// How far the loader itself reaches: its start-up code identity-maps the first
/// 4 GiB (where a Multiboot loader puts everything it hands over), so it can write a
/// kernel only below this address.
pub const LOADER_REACH: u64 = 4 << 30;

/// Low-memory ranges that must stay unmapped, with the reason each is named by.
/// The EBDA's exact place is the BIOS's choice; it lies below 0xA0000 and, per the
/// BIOS data area, at most 128 KiB below it, so the whole window is kept clear,
/// together with the VGA, option-ROM and BIOS areas up to 1 MiB.
const FORBIDDEN_LOW: [(Region, &str); 3] = [
    (
        Region {
            start: 0,
            end: 0x1000,
        },
        "page 0",
    ),
    (
        Region {
            start: 0x8000,
            end: 0x9000,
        },
        "the SMP trampoline page at 0x8000",
    ),
    (
        Region {
            start: 0x8_0000,
            end: ONE_MIB,
        },
        "the EBDA and BIOS area (0x80000-0xfffff)",
    ),
];

/// How the kernel image is to be placed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelPlacement {
    /// `ET_DYN`: the loader picks a base; the image spans `size` bytes from it and
    /// needs alignment `align` (0 or a power of two).
    Dyn {
        /// Bytes from the base to the end of the highest segment.
        size: u64,
        /// The largest segment alignment.
        align: u64,
    },
    /// `ET_EXEC`: the image occupies `[start, end)` as linked.
    Exec {
        /// The lowest segment address.
        start: u64,
        /// The end of the highest segment.
        end: u64,
    },
}

/// The name of the loader part that holds its heap, where the boot data the loader
/// builds (boot info, device tree, an MBI under PVH) lies.
pub const HEAP_PART: &str = "loader heap";

/// One named part of the loader image: the buffers the loader keeps for itself and
/// for the kernel (heap, page-table arena, stacks, boot page tables).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoaderPart {
    /// What the part is, for messages (`"kernel stack"`).
    pub name: &'static str,
    pub region: Region,
}

/// What the loader knows about memory when it places the kernel.
#[derive(Clone, Copy, Debug)]
pub struct LayoutInput<'a> {
    /// Usable RAM (Multiboot memory map entries of type 1).
    pub ram: &'a [Region],
    /// The loader image including its .bss.
    pub loader: Region,
    /// The named parts of the loader image; each must lie inside it, apart from the
    /// others. The kernel reads some of them (its stack, the page tables) after the
    /// hand-over, so a linker-script change that moved one out is caught here.
    pub loader_parts: &'a [LoaderPart],
    /// A page of the loader image left unmapped: the guard below the kernel's stack,
    /// so that a kernel overflowing its 32 KiB stack faults (and the loader's
    /// exception handler reports it) instead of overwriting what lies below. Empty:
    /// no guard.
    pub stack_guard: Region,
    /// The page(s) holding the MBI and its memory map: the firmware's, outside the
    /// loader image (Multiboot), or the one the loader built on its heap (PVH).
    pub mbi: Region,
    /// QEMU's buffer after the loader: command line and module list, which must stay
    /// mapped and intact (empty under PVH: the loader copies what the kernel reads).
    pub boot_data: Region,
    /// Module 0, the application file: read while loading, not after, so it may lie
    /// below the kernel (Multiboot) or above it (PVH: at the top of RAM), where it is
    /// not mapped.
    pub module: Region,
    /// How the kernel is placed.
    pub kernel: KernelPlacement,
}

/// Where the kernel goes and what the hand-over page tables map.
///
/// Only [`plan_layout`] makes one, so a `Layout` is proof that its kernel region is
/// usable RAM within the loader's reach that overlaps nothing the loader or the
/// kernel still needs: the loader binary hands out the kernel's memory on that proof.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    kernel: Region,
    mappings: Vec<Mapping>,
}

impl Layout {
    /// Where the kernel image goes; its start is the load base.
    pub fn kernel(&self) -> Region {
        self.kernel
    }

    /// The identity mappings for the hand-over page tables, sorted by address.
    pub fn mappings(&self) -> &[Mapping] {
        &self.mappings
    }

    /// Builds the hand-over page tables for this layout into `arena` (whose first
    /// table lies at physical address `arena_phys`).
    pub fn build_page_tables(
        &self,
        arena: &mut [PageTable],
        arena_phys: u64,
    ) -> Result<HandOverTables, LoadError> {
        let (pml4, stats) = build_page_tables(&self.mappings, arena, arena_phys)?;
        Ok(HandOverTables { pml4, stats })
    }
}

/// Page tables built for a [`Layout`]: they identity-map the loader image (its code,
/// GDT, IDT, stack, boot info and the tables themselves), the MBI, the boot data and
/// the kernel, and the module where it lies between the loader and the kernel (where
/// QEMU puts it; the kernel never reads it, so a module elsewhere stays unmapped).
/// Only [`Layout::build_page_tables`] makes one, so switching to them keeps the
/// switching code mapped where it runs.
#[derive(Debug, PartialEq, Eq)]
pub struct HandOverTables {
    pml4: u64,
    stats: PageTableStats,
}

impl HandOverTables {
    /// The PML4's physical address, for CR3.
    pub fn pml4(&self) -> u64 {
        self.pml4
    }

    /// What was built.
    pub fn stats(&self) -> &PageTableStats {
        &self.stats
    }
}

/// `value` rounded down to a multiple of the power of two `align`.
const fn align_down(value: u64, align: u64) -> u64 {
    value & !(align - 1)
}

/// `value` rounded up to a multiple of the power of two `align`, or `None` on
/// overflow.
fn align_up(value: u64, align: u64) -> Option<u64> {
    value.checked_add(align - 1).map(|v| align_down(v, align))
}

/// Refuses an inverted range, naming it.
fn check_ordered(region: &Region, what: &'static str) -> Result<(), LoadError> {
    if region.start > region.end {
        return Err(LoadError::BadMultiboot { what });
    }
    Ok(())
}

/// Where the kernel image goes, in `ram`.
fn place_kernel(input: &LayoutInput, ram: &UsableRam) -> Result<Region, LoadError> {
    match input.kernel {
        KernelPlacement::Exec { start, end } => {
            if start >= end {
                return Err(LoadError::MalformedElf {
                    what: "the kernel image is empty",
                });
            }
            Ok(Region { start, end })
        }
        KernelPlacement::Dyn { size, align } => {
            if size == 0 {
                return Err(LoadError::MalformedElf {
                    what: "the kernel image is empty",
                });
            }
            if align != 0 && !align.is_power_of_two() {
                return Err(LoadError::MalformedElf {
                    what: "the kernel's segment alignment is not a power of two",
                });
            }
            let too_high = |start| LoadError::NotEnoughMemory {
                what: "kernel image",
                start,
                end: u64::MAX,
            };
            // The kernel goes above everything it still reads after the hand-over;
            // the kernel treats its image as whole 2 MiB pages, so the base is 2 MiB
            // aligned.
            let alignment = align.max(HUGE_PAGE);
            let below = [input.loader, input.boot_data, input.mbi]
                .iter()
                .map(|r| r.end)
                .max()
                .unwrap_or(0);
            let base = align_up(below, HUGE_PAGE).ok_or(too_high(below))?;
            let floor = base.max(KERNEL_MIN_BASE);
            let floor = align_up(floor, alignment).ok_or(too_high(floor))?;
            // The lowest place from there that lies in usable RAM and clear of the
            // module (read while loading, not after: it may lie below the kernel, as
            // Multiboot puts it, or above it, as PVH and UEFI do). Firmware may keep
            // memory above 8 MiB for itself (OVMF's ACPI NVS at 0x800000).
            for stretch in ram.stretches() {
                let mut start = align_up(stretch.start.max(floor), alignment);
                while let Some(base) = start {
                    let Some(end) = base.checked_add(size).filter(|&end| end <= stretch.end) else {
                        break;
                    };
                    let kernel = Region { start: base, end };
                    if !kernel.overlaps(&input.module) {
                        return Ok(kernel);
                    }
                    start = align_up(input.module.end, alignment).filter(|&b| b > base);
                }
            }
            // Nowhere: the first place clear of the module, which the caller
            // refuses as outside RAM.
            let end = floor.checked_add(size).ok_or(too_high(floor))?;
            let kernel = Region { start: floor, end };
            if !kernel.overlaps(&input.module) {
                return Ok(kernel);
            }
            let base = align_up(input.module.end, alignment).ok_or(too_high(input.module.end))?;
            let end = base.checked_add(size).ok_or(too_high(base))?;
            let above = Region { start: base, end };
            if !ram.contains(&above) {
                return Err(LoadError::NoRoomBesideModule {
                    kernel: (kernel.start, kernel.end),
                    module: (input.module.start, input.module.end),
                    above_end: above.end,
                });
            }
            Ok(above)
        }
    }
}

/// Plans where the kernel goes and which ranges the hand-over page tables
/// identity-map, refusing any input that would break a kernel generation's rules.
///
/// A relocatable kernel goes at the lowest place from `max(align_up(highest end of
/// loader, boot data, MBI, 2 MiB), 0x800000)` up, aligned to its own alignment if
/// larger, where it lies in one stretch of usable RAM and clear of the module (on
/// QEMU's maps: there, or right above the module); a fixed one where it was linked. The mappings are: the MBI page(s) read-only with 4 KiB
/// pages (unless already inside the next range); from the loader's first page up to
/// the next 2 MiB boundary with 4 KiB pages; from there up to the kernel's end
/// rounded up to 2 MiB with 2 MiB pages, writable. The boot data lies in between
/// and is mapped with it, as is the module when it lies below the kernel. The stack
/// guard page is left out: the 4 KiB pages reach up to the 2 MiB boundary above it.
pub fn plan_layout(input: &LayoutInput) -> Result<Layout, LoadError> {
    check_ordered(&input.loader, "the loader image ends before it starts")?;
    check_ordered(&input.mbi, "the MBI range ends before it starts")?;
    check_ordered(
        &input.boot_data,
        "the command-line buffer ends before it starts",
    )?;
    check_ordered(&input.module, "module 0 ends before it starts")?;
    if input.loader.is_empty() {
        return Err(LoadError::BadMultiboot {
            what: "the loader image is empty",
        });
    }
    if input.mbi.is_empty() {
        return Err(LoadError::BadMultiboot {
            what: "the MBI range is empty",
        });
    }
    if !input.ram.iter().any(|r| !r.is_empty()) {
        return Err(LoadError::BadMultiboot {
            what: "the memory map lists no usable RAM",
        });
    }
    let ram = UsableRam::new(input.ram)?;

    // What the kernel reads after the hand-over must be in RAM the firmware vouches
    // for.
    let kept = [
        (input.loader, "loader image"),
        (input.mbi, "MBI"),
        (input.boot_data, "boot data (command line, module list)"),
    ];
    for (region, what) in kept {
        if !ram.contains(&region) {
            return Err(LoadError::NotEnoughMemory {
                what,
                start: region.start,
                end: region.end,
            });
        }
    }
    // The firmware's MBI lies outside the loader image; one the loader built (PVH)
    // lies on its heap, which the kernel keeps with the rest of the image.
    let mbi_on_heap = input
        .loader_parts
        .iter()
        .any(|part| part.name == HEAP_PART && part.region.contains_range(&input.mbi));
    if input.mbi.overlaps(&input.loader) && !mbi_on_heap {
        return Err(overlap("MBI", input.mbi, "loader image", input.loader));
    }
    check_loader_parts(input.loader, input.loader_parts)?;

    let kernel = place_kernel(input, &ram)?;
    let others = [
        (input.loader, "loader image"),
        (input.mbi, "MBI"),
        (input.boot_data, "boot data (command line, module list)"),
        (input.module, "module"),
    ];
    for (region, what) in others {
        if kernel.overlaps(&region) {
            return Err(overlap("kernel image", kernel, what, region));
        }
    }
    if !ram.contains(&kernel) {
        return Err(LoadError::NotEnoughMemory {
            what: "kernel image",
            start: kernel.start,
            end: kernel.end,
        });
    }
    if kernel.end > LOADER_REACH {
        return Err(LoadError::NotEnoughMemory {
            what: "kernel image (the loader reaches only the first 4 GiB)",
            start: kernel.start,
            end: kernel.end,
        });
    }

    // The kernel owns its image as whole 2 MiB pages and all RAM above it; what it
    // still needs from the loader must lie below.
    let owned = Region {
        start: align_down(kernel.start, HUGE_PAGE),
        end: u64::MAX,
    };
    for (region, what) in kept {
        if !region.is_empty() && region.end > owned.start {
            return Err(overlap(
                what,
                region,
                "the kernel's 2 MiB pages and the RAM above",
                owned,
            ));
        }
    }

    let mappings = plan_mappings(input, &kernel)?;
    Ok(Layout { kernel, mappings })
}

/// Checks that every part lies inside the loader image and apart from the others.
fn check_loader_parts(image: Region, parts: &[LoaderPart]) -> Result<(), LoadError> {
    let mut sorted: Vec<&LoaderPart> = parts.iter().collect();
    // The loader lists its parts in address order; the sort runs only when not.
    if !sorted.is_sorted_by_key(|part| part.region.start) {
        sorted.sort_unstable_by_key(|part| part.region.start);
    }
    for part in &sorted {
        if part.region.is_empty() || !image.contains_range(&part.region) {
            return Err(overlap(
                part.name,
                part.region,
                "outside of the loader image",
                image,
            ));
        }
    }
    // Sorted by start, two parts overlap only if neighbours do.
    for pair in sorted.windows(2) {
        if pair[0].region.overlaps(&pair[1].region) {
            return Err(overlap(
                pair[0].name,
                pair[0].region,
                pair[1].name,
                pair[1].region,
            ));
        }
    }
    Ok(())
}

/// The identity mappings for a kernel placed at `kernel`.
fn plan_mappings(input: &LayoutInput, kernel: &Region) -> Result<Vec<Mapping>, LoadError> {
    let low = align_down(input.loader.start, PAGE);
    if low < ONE_MIB {
        let below = Region {
            start: 0,
            end: ONE_MIB,
        };
        return Err(overlap(
            "loader image",
            input.loader,
            "low memory below 1 MiB",
            below,
        ));
    }
    if !input.boot_data.is_empty() && input.boot_data.start < low {
        return Err(LoadError::BadMultiboot {
            what:
                "the command line and module list lie below the loader image, outside the mapping",
        });
    }
    let top = align_up(kernel.end, HUGE_PAGE).ok_or(LoadError::NotEnoughMemory {
        what: "kernel image",
        start: kernel.start,
        end: kernel.end,
    })?;
    if top > IDENTITY_LIMIT {
        return Err(LoadError::BadMapping {
            what: "the kernel lies beyond what an identity mapping can reach",
            start: kernel.start,
            end: top,
        });
    }
    // The stack guard is left out of the 4 KiB pages, which therefore reach past
    // it when it lies above the first 2 MiB boundary (a large debug build).
    let guard = input.stack_guard;
    let whole_pages_of_the_loader = guard.start.is_multiple_of(PAGE)
        && guard.end.is_multiple_of(PAGE)
        && input.loader.contains_range(&guard);
    if !guard.is_empty() && !whole_pages_of_the_loader {
        return Err(LoadError::BadMapping {
            what: "the stack guard is not whole pages of the loader image",
            start: guard.start,
            end: guard.end,
        });
    }
    // `low < top` because the loader lies below the kernel, and `top` is 2 MiB
    // aligned, so `mid` cannot exceed `top` (nor can the guard, inside the loader);
    // `min` keeps that obvious.
    let mid = align_up(low.max(guard.end), HUGE_PAGE)
        .unwrap_or(top)
        .min(top);

    let mut mappings = Vec::new();
    let mbi = Region {
        start: align_down(input.mbi.start, PAGE),
        end: align_up(input.mbi.end, PAGE).ok_or(LoadError::BadMultiboot {
            what: "the MBI lies at the end of the address space",
        })?,
    };
    let main = Region {
        start: low,
        end: top,
    };
    if mbi.end <= low {
        // The MBI is the only thing mapped below 1 MiB; it must keep clear of the
        // ranges kernels map themselves.
        for (forbidden, name) in FORBIDDEN_LOW {
            if mbi.overlaps(&forbidden) {
                return Err(overlap("MBI page(s)", mbi, name, forbidden));
            }
        }
        mappings.push(Mapping {
            start: mbi.start,
            end: mbi.end,
            page_size: PageSize::Size4K,
            writable: false,
        });
    } else if !main.contains_range(&mbi) {
        return Err(overlap("MBI page(s)", mbi, "loader image page(s)", main));
    }
    let pieces = if guard.is_empty() {
        [(low, mid), (mid, mid)]
    } else {
        [(low, guard.start), (guard.end, mid)]
    };
    for (start, end) in pieces {
        if start < end {
            mappings.push(Mapping {
                start,
                end,
                page_size: PageSize::Size4K,
                writable: true,
            });
        }
    }
    if mid < top {
        mappings.push(Mapping {
            start: mid,
            end: top,
            page_size: PageSize::Size2M,
            writable: true,
        });
    }
    Ok(mappings)
}

/// The error for `what` overlapping `other`.
fn overlap(what: &'static str, region: Region, other: &'static str, with: Region) -> LoadError {
    LoadError::LayoutOverlap {
        what,
        start: region.start,
        end: region.end,
        other,
        other_start: with.start,
        other_end: with.end,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::tests::{arbitrary_region, covered_entry_by_entry};
    use crate::paging::translate;
    use proptest::prelude::*;

    /// QEMU's memory map with 128 MiB: conventional memory up to the EBDA, then RAM
    /// from 1 MiB.
    const QEMU_RAM: [Region; 2] = [Region::new(0, 0x9_fc00), Region::new(0x10_0000, 0x800_0000)];

    /// Parts of the loader image as the linker script lays them out.
    const QEMU_LOADER_PARTS: [LoaderPart; 2] = [
        LoaderPart {
            name: HEAP_PART,
            region: Region::new(0x12_0000, 0x14_0000),
        },
        LoaderPart {
            name: "kernel stack",
            region: Region::new(0x14_0000, 0x14_8000),
        },
    ];

    /// A layout as QEMU hands it over: MBI page at 0x9000, loader at 1 MiB, the
    /// command-line buffer right after it and the module page aligned after that.
    fn qemu(kernel: KernelPlacement) -> LayoutInput<'static> {
        LayoutInput {
            ram: &QEMU_RAM,
            loader: Region::new(0x10_0000, 0x16_3000),
            loader_parts: &QEMU_LOADER_PARTS,
            stack_guard: Region::new(0, 0),
            mbi: Region::new(0x9000, 0xa000),
            boot_data: Region::new(0x16_3000, 0x16_3200),
            module: Region::new(0x16_4000, 0x5a_0000),
            kernel,
        }
    }

    const fn map(start: u64, end: u64, page_size: PageSize, writable: bool) -> Mapping {
        Mapping::new(start, end, page_size, writable)
    }

    /// The mappings every QEMU case shares, up to `top` with 2 MiB pages.
    fn qemu_mappings(top: u64) -> Vec<Mapping> {
        vec![
            map(0x9000, 0xa000, PageSize::Size4K, false),
            map(0x10_0000, 0x20_0000, PageSize::Size4K, true),
            map(0x20_0000, top, PageSize::Size2M, true),
        ]
    }

    /// Plans `input` and compares the kernel region and the mappings, or the error.
    fn check(name: &str, input: LayoutInput, expected: Result<(Region, Vec<Mapping>), LoadError>) {
        let got = plan_layout(&input).map(|layout| (layout.kernel, layout.mappings));
        assert_eq!(got, expected, "{name}");
    }

    fn dyn_kernel(size: u64, align: u64) -> KernelPlacement {
        KernelPlacement::Dyn { size, align }
    }

    fn exec_kernel(start: u64, end: u64) -> KernelPlacement {
        KernelPlacement::Exec { start, end }
    }

    #[test]
    fn leaves_the_stack_guard_unmapped() {
        let guarded = LayoutInput {
            stack_guard: Region::new(0x13_f000, 0x14_0000),
            ..qemu(dyn_kernel(0x2c_0000, 0x1000))
        };
        check(
            "the page below the kernel stack",
            guarded,
            Ok((
                Region::new(0x80_0000, 0xac_0000),
                vec![
                    map(0x9000, 0xa000, PageSize::Size4K, false),
                    map(0x10_0000, 0x13_f000, PageSize::Size4K, true),
                    map(0x14_0000, 0x20_0000, PageSize::Size4K, true),
                    map(0x20_0000, 0xc0_0000, PageSize::Size2M, true),
                ],
            )),
        );
        // In a loader image reaching past 2 MiB, the 4 KiB pages go on to the next
        // 2 MiB boundary above the guard.
        let high_guard = LayoutInput {
            loader: Region::new(0x10_0000, 0x25_0000),
            stack_guard: Region::new(0x20_3000, 0x20_4000),
            boot_data: Region::new(0x25_0000, 0x25_0200),
            module: Region::new(0x25_1000, 0x5a_0000),
            ..qemu(dyn_kernel(0x2c_0000, 0x1000))
        };
        check(
            "a guard above 2 MiB",
            high_guard,
            Ok((
                Region::new(0x80_0000, 0xac_0000),
                vec![
                    map(0x9000, 0xa000, PageSize::Size4K, false),
                    map(0x10_0000, 0x20_3000, PageSize::Size4K, true),
                    map(0x20_4000, 0x40_0000, PageSize::Size4K, true),
                    map(0x40_0000, 0xc0_0000, PageSize::Size2M, true),
                ],
            )),
        );
        for (what, guard) in [
            ("not page aligned", Region::new(0x13_f800, 0x14_0000)),
            (
                "outside the loader image",
                Region::new(0x17_0000, 0x17_1000),
            ),
        ] {
            let input = LayoutInput {
                stack_guard: guard,
                ..qemu(dyn_kernel(0x2c_0000, 0x1000))
            };
            check(
                what,
                input,
                Err(LoadError::BadMapping {
                    what: "the stack guard is not whole pages of the loader image",
                    start: guard.start,
                    end: guard.end,
                }),
            );
        }
    }

    #[test]
    fn places_kernels_and_maps_what_they_need() {
        check(
            "relocatable kernel at the 8 MiB floor",
            qemu(dyn_kernel(0x2c_0000, 0x1000)),
            Ok((Region::new(0x80_0000, 0xac_0000), qemu_mappings(0xc0_0000))),
        );
        check(
            "relocatable kernel ending on a 2 MiB boundary",
            qemu(dyn_kernel(0x20_0000, 0)),
            Ok((Region::new(0x80_0000, 0xa0_0000), qemu_mappings(0xa0_0000))),
        );
        check(
            "relocatable kernel with a larger alignment",
            qemu(dyn_kernel(0x1000, 0x100_0000)),
            Ok((
                Region::new(0x100_0000, 0x100_1000),
                qemu_mappings(0x120_0000),
            )),
        );
        let big_module = LayoutInput {
            module: Region::new(0x16_4000, 0x90_0001),
            ..qemu(dyn_kernel(0x1000, 0x1000))
        };
        check(
            "relocatable kernel above a large module",
            big_module,
            Ok((Region::new(0xa0_0000, 0xa0_1000), qemu_mappings(0xc0_0000))),
        );
        check(
            "fixed kernel at 8 MiB",
            qemu(exec_kernel(0x80_0000, 0x93_4567)),
            Ok((Region::new(0x80_0000, 0x93_4567), qemu_mappings(0xa0_0000))),
        );
        check(
            "fixed kernel at an unaligned address",
            qemu(exec_kernel(0x60_1000, 0x70_0000)),
            Ok((Region::new(0x60_1000, 0x70_0000), qemu_mappings(0x80_0000))),
        );
        let mbi_inside = LayoutInput {
            mbi: Region::new(0x16_3200, 0x16_3800),
            ..qemu(dyn_kernel(0x1000, 0))
        };
        check(
            "an MBI above the loader needs no mapping of its own",
            mbi_inside,
            Ok((
                Region::new(0x80_0000, 0x80_1000),
                vec![
                    map(0x10_0000, 0x20_0000, PageSize::Size4K, true),
                    map(0x20_0000, 0xa0_0000, PageSize::Size2M, true),
                ],
            )),
        );
        let loader_2m = LayoutInput {
            loader: Region::new(0x20_0000, 0x21_0000),
            loader_parts: &[],
            boot_data: Region::new(0x21_0000, 0x21_0100),
            module: Region::new(0x21_1000, 0x30_0000),
            ..qemu(dyn_kernel(0x1000, 0))
        };
        check(
            "a loader on a 2 MiB boundary gets no 4 KiB part",
            loader_2m,
            Ok((
                Region::new(0x80_0000, 0x80_1000),
                vec![
                    map(0x9000, 0xa000, PageSize::Size4K, false),
                    map(0x20_0000, 0xa0_0000, PageSize::Size2M, true),
                ],
            )),
        );
    }

    #[test]
    fn loader_parts_stay_inside_the_image_and_apart() {
        let part = |name, start, end| LoaderPart {
            name,
            region: Region::new(start, end),
        };
        let outside = [part("heap", 0x16_0000, 0x17_0000)];
        check(
            "a part reaching past the loader image",
            LayoutInput {
                loader_parts: &outside,
                ..qemu(dyn_kernel(0x1000, 0))
            },
            Err(overlap(
                "heap",
                Region::new(0x16_0000, 0x17_0000),
                "outside of the loader image",
                Region::new(0x10_0000, 0x16_3000),
            )),
        );
        let overlapping = [
            part("kernel stack", 0x14_0000, 0x14_8000),
            part("heap", 0x12_0000, 0x14_1000),
        ];
        check(
            "two parts sharing a page",
            LayoutInput {
                loader_parts: &overlapping,
                ..qemu(dyn_kernel(0x1000, 0))
            },
            Err(overlap(
                "heap",
                Region::new(0x12_0000, 0x14_1000),
                "kernel stack",
                Region::new(0x14_0000, 0x14_8000),
            )),
        );
    }

    #[test]
    fn refuses_overlaps() {
        let kernel_vs = |what: &'static str, other: &'static str, kernel: Region, with: Region| {
            Err(overlap(what, kernel, other, with))
        };
        check(
            "fixed kernel over the loader",
            qemu(exec_kernel(0x16_0000, 0x90_0000)),
            kernel_vs(
                "kernel image",
                "loader image",
                Region::new(0x16_0000, 0x90_0000),
                Region::new(0x10_0000, 0x16_3000),
            ),
        );
        check(
            "fixed kernel over the MBI",
            qemu(exec_kernel(0x9800, 0x9900)),
            kernel_vs(
                "kernel image",
                "MBI",
                Region::new(0x9800, 0x9900),
                Region::new(0x9000, 0xa000),
            ),
        );
        check(
            "fixed kernel over the command line",
            qemu(exec_kernel(0x16_3100, 0x16_3180)),
            kernel_vs(
                "kernel image",
                "boot data (command line, module list)",
                Region::new(0x16_3100, 0x16_3180),
                Region::new(0x16_3000, 0x16_3200),
            ),
        );
        check(
            "fixed kernel over the module",
            qemu(exec_kernel(0x40_0000, 0x80_0000)),
            kernel_vs(
                "kernel image",
                "module",
                Region::new(0x40_0000, 0x80_0000),
                Region::new(0x16_4000, 0x5a_0000),
            ),
        );
        let owned = |start| Region::new(start, u64::MAX);
        let above = LayoutInput {
            module: Region::new(0x16_4000, 0x16_5000),
            ..qemu(exec_kernel(0x18_0000, 0x19_0000))
        };
        check(
            "fixed kernel whose 2 MiB page holds the loader",
            above,
            kernel_vs(
                "loader image",
                "the kernel's 2 MiB pages and the RAM above",
                Region::new(0x10_0000, 0x16_3000),
                owned(0),
            ),
        );
        let mbi_high = LayoutInput {
            mbi: Region::new(0x100_0000, 0x100_1000),
            ..qemu(exec_kernel(0x80_0000, 0x90_0000))
        };
        check(
            "an MBI above the kernel",
            mbi_high,
            kernel_vs(
                "MBI",
                "the kernel's 2 MiB pages and the RAM above",
                Region::new(0x100_0000, 0x100_1000),
                owned(0x80_0000),
            ),
        );
        let mbi_in_loader = LayoutInput {
            mbi: Region::new(0x10_f000, 0x11_0000),
            ..qemu(dyn_kernel(0x1000, 0))
        };
        check(
            "an MBI inside the loader image",
            mbi_in_loader,
            kernel_vs(
                "MBI",
                "loader image",
                Region::new(0x10_f000, 0x11_0000),
                Region::new(0x10_0000, 0x16_3000),
            ),
        );
    }

    /// What a PVH boot gives: the MBI the loader built on its heap, no boot data
    /// outside the loader, the module at the top of RAM.
    fn pvh(kernel: KernelPlacement) -> LayoutInput<'static> {
        LayoutInput {
            mbi: Region::new(0x12_1000, 0x12_1200),
            boot_data: Region::new(0, 0),
            module: Region::new(0x7f9_e000, 0x7fb_e000),
            ..qemu(kernel)
        }
    }

    /// Usable RAM after OVMF's ExitBootServices on q35 with S3 on: ACPI NVS at
    /// 0x800000-0x900000 with two usable holes in it.
    const OVMF_RAM: [Region; 5] = [
        Region::new(0, 0x9_fc00),
        Region::new(0x10_0000, 0x80_0000),
        Region::new(0x80_8000, 0x80_b000),
        Region::new(0x80_c000, 0x81_0000),
        Region::new(0x90_0000, 0x3eb_7000),
    ];

    #[test]
    fn a_kernel_goes_to_the_first_free_place_above_firmware_memory() {
        let uefi = |kernel| LayoutInput {
            ram: &OVMF_RAM,
            mbi: Region::new(0x12_1000, 0x12_1200),
            boot_data: Region::new(0, 0),
            module: Region::new(0x3e0_0000, 0x3e2_0000),
            ..qemu(kernel)
        };
        let layout = plan_layout(&uefi(dyn_kernel(0x4_0000, 0))).unwrap();
        assert_eq!(layout.kernel(), Region::new(0xa0_0000, 0xa4_0000));
        // Up to the module's start, and refused when it fits neither below nor
        // above it.
        let large = plan_layout(&uefi(dyn_kernel(0x340_0000, 0))).unwrap();
        assert_eq!(large.kernel(), Region::new(0xa0_0000, 0x3e0_0000));
        assert!(matches!(
            plan_layout(&uefi(dyn_kernel(0x350_0000, 0))),
            Err(LoadError::NotEnoughMemory {
                what: "kernel image",
                ..
            })
        ));
        // An ET_EXEC kernel linked at 8 MiB cannot go there: OVMF keeps it.
        assert!(matches!(
            plan_layout(&uefi(exec_kernel(0x80_0000, 0x81_0000))),
            Err(LoadError::NotEnoughMemory {
                what: "kernel image",
                start: 0x80_0000,
                ..
            })
        ));
    }

    #[test]
    fn pvh_places_the_kernel_below_the_module_and_maps_neither_it_nor_low_memory() {
        let layout = plan_layout(&pvh(dyn_kernel(0x1000, 0))).unwrap();
        assert_eq!(layout.kernel(), Region::new(0x80_0000, 0x80_1000));
        // The MBI on the heap needs no mapping of its own; nothing lies below the
        // loader and nothing above the kernel's 2 MiB page.
        let mappings = layout.mappings();
        assert_eq!(mappings.first().unwrap().start, 0x10_0000);
        assert_eq!(mappings.last().unwrap().end, 0xa0_0000);
        // A kernel too large for the space below the module would go above it, where
        // there is no RAM: the refusal names both, and how far RAM must reach.
        let large = plan_layout(&pvh(dyn_kernel(0x780_0000, 0))).unwrap_err();
        assert_eq!(
            large,
            LoadError::NoRoomBesideModule {
                kernel: (0x80_0000, 0x800_0000),
                module: (0x7f9_e000, 0x7fb_e000),
                above_end: 0xf80_0000,
            }
        );
        assert!(
            large
                .to_string()
                .ends_with("RAM must reach past 0x8020000: -m 129M at least"),
            "{large}"
        );
        // An MBI inside the loader image but not on its heap is refused.
        let off_heap = LayoutInput {
            mbi: Region::new(0x14_1000, 0x14_1100),
            ..pvh(dyn_kernel(0x1000, 0))
        };
        assert!(matches!(
            plan_layout(&off_heap),
            Err(LoadError::LayoutOverlap { what: "MBI", .. })
        ));
    }

    #[test]
    fn keeps_low_memory_unmapped() {
        let with_mbi = |start, end| LayoutInput {
            mbi: Region::new(start, end),
            ..qemu(dyn_kernel(0x1000, 0))
        };
        let cases = [
            (0x0, 0x100, Region::new(0, 0x1000), "page 0"),
            (
                0x8f00,
                0x9100,
                Region::new(0x8000, 0xa000),
                "the SMP trampoline page at 0x8000",
            ),
            (
                0x9_f000,
                0x9_f800,
                Region::new(0x9_f000, 0xa_0000),
                "the EBDA and BIOS area (0x80000-0xfffff)",
            ),
        ];
        for (start, end, pages, name) in cases {
            let forbidden = FORBIDDEN_LOW.iter().find(|(_, n)| *n == name).unwrap().0;
            check(
                name,
                with_mbi(start, end),
                Err(overlap("MBI page(s)", pages, name, forbidden)),
            );
        }
        let low_loader = LayoutInput {
            loader: Region::new(0x1_0000, 0x2_0000),
            loader_parts: &[],
            mbi: Region::new(0x9000, 0x9800),
            boot_data: Region::new(0x2_0000, 0x2_0100),
            module: Region::new(0x2_1000, 0x3_0000),
            ..qemu(dyn_kernel(0x1000, 0))
        };
        check(
            "a loader below 1 MiB",
            low_loader,
            Err(overlap(
                "loader image",
                Region::new(0x1_0000, 0x2_0000),
                "low memory below 1 MiB",
                Region::new(0, ONE_MIB),
            )),
        );
    }

    #[test]
    fn refuses_what_is_not_in_ram() {
        check(
            "relocatable kernel larger than RAM",
            qemu(dyn_kernel(0x800_0000, 0)),
            Err(LoadError::NotEnoughMemory {
                what: "kernel image",
                start: 0x80_0000,
                end: 0x880_0000,
            }),
        );
        check(
            "fixed kernel in the hole above conventional memory",
            qemu(exec_kernel(0x800_0000, 0x800_1000)),
            Err(LoadError::NotEnoughMemory {
                what: "kernel image",
                start: 0x800_0000,
                end: 0x800_1000,
            }),
        );
        let loader_out = LayoutInput {
            loader: Region::new(0x7ff_0000, 0x801_0000),
            loader_parts: &[],
            ..qemu(dyn_kernel(0x1000, 0))
        };
        check(
            "loader beyond RAM",
            loader_out,
            Err(LoadError::NotEnoughMemory {
                what: "loader image",
                start: 0x7ff_0000,
                end: 0x801_0000,
            }),
        );
        let mbi_out = LayoutInput {
            mbi: Region::new(0xa_0000, 0xa_1000),
            ..qemu(dyn_kernel(0x1000, 0))
        };
        check(
            "MBI in VGA memory",
            mbi_out,
            Err(LoadError::NotEnoughMemory {
                what: "MBI",
                start: 0xa_0000,
                end: 0xa_1000,
            }),
        );
        let data_out = LayoutInput {
            boot_data: Region::new(0x9_f000, 0x9_fd00),
            ..qemu(dyn_kernel(0x1000, 0))
        };
        check(
            "command line over the EBDA",
            data_out,
            Err(LoadError::NotEnoughMemory {
                what: "boot data (command line, module list)",
                start: 0x9_f000,
                end: 0x9_fd00,
            }),
        );
        // Firmware may split one stretch of RAM into adjacent entries.
        const SPLIT: &[Region] = &[
            Region::new(0, 0x9_fc00),
            Region::new(0x10_0000, 0x85_0000),
            Region::new(0x85_0000, 0x800_0000),
        ];
        check(
            "kernel across adjacent memory-map entries",
            LayoutInput {
                ram: SPLIT,
                ..qemu(dyn_kernel(0x10_0000, 0))
            },
            Ok((Region::new(0x80_0000, 0x90_0000), qemu_mappings(0xa0_0000))),
        );
        let no_data = LayoutInput {
            boot_data: Region::new(0x100_0000, 0x100_0000),
            ..qemu(exec_kernel(0x80_0000, 0x93_4567))
        };
        check(
            "an empty command-line buffer needs no place",
            no_data,
            Ok((Region::new(0x80_0000, 0x93_4567), qemu_mappings(0xa0_0000))),
        );
        check(
            "empty memory map",
            LayoutInput {
                ram: &[],
                ..qemu(dyn_kernel(0x1000, 0))
            },
            Err(LoadError::BadMultiboot {
                what: "the memory map lists no usable RAM",
            }),
        );
    }

    #[test]
    fn refuses_malformed_input_without_overflow() {
        check(
            "empty relocatable kernel",
            qemu(dyn_kernel(0, 0)),
            Err(LoadError::MalformedElf {
                what: "the kernel image is empty",
            }),
        );
        check(
            "empty fixed kernel",
            qemu(exec_kernel(0x80_0000, 0x80_0000)),
            Err(LoadError::MalformedElf {
                what: "the kernel image is empty",
            }),
        );
        check(
            "alignment not a power of two",
            qemu(dyn_kernel(0x1000, 0x30_0000)),
            Err(LoadError::MalformedElf {
                what: "the kernel's segment alignment is not a power of two",
            }),
        );
        check(
            "kernel size overflows",
            qemu(dyn_kernel(u64::MAX, 0)),
            Err(LoadError::NotEnoughMemory {
                what: "kernel image",
                start: 0x80_0000,
                end: u64::MAX,
            }),
        );
        check(
            "aligned base plus size overflows",
            qemu(dyn_kernel(1 << 63, 1 << 63)),
            Err(LoadError::NotEnoughMemory {
                what: "kernel image",
                start: 1 << 63,
                end: u64::MAX,
            }),
        );
        check(
            "inverted module",
            LayoutInput {
                module: Region::new(0x20_0000, 0x10_0000),
                ..qemu(dyn_kernel(0x1000, 0))
            },
            Err(LoadError::BadMultiboot {
                what: "module 0 ends before it starts",
            }),
        );
        const HUGE: &[Region] = &[Region::new(0, 0x9_fc00), Region::new(0x10_0000, u64::MAX)];
        check(
            "fixed kernel beyond the loader's reach",
            LayoutInput {
                ram: HUGE,
                ..qemu(exec_kernel(1 << 47, (1 << 47) + 0x1000))
            },
            Err(LoadError::NotEnoughMemory {
                what: "kernel image (the loader reaches only the first 4 GiB)",
                start: 1 << 47,
                end: (1 << 47) + 0x1000,
            }),
        );
        check(
            "fixed kernel just above 4 GiB",
            LayoutInput {
                ram: HUGE,
                ..qemu(exec_kernel(LOADER_REACH - 0x1000, LOADER_REACH + 0x1000))
            },
            Err(LoadError::NotEnoughMemory {
                what: "kernel image (the loader reaches only the first 4 GiB)",
                start: LOADER_REACH - 0x1000,
                end: LOADER_REACH + 0x1000,
            }),
        );
        check(
            "fixed kernel at the end of the address space",
            LayoutInput {
                ram: HUGE,
                ..qemu(exec_kernel(u64::MAX - 0x1000, u64::MAX - 1))
            },
            Err(LoadError::NotEnoughMemory {
                what: "kernel image (the loader reaches only the first 4 GiB)",
                start: u64::MAX - 0x1000,
                end: u64::MAX - 1,
            }),
        );
    }

    #[test]
    fn plans_on_a_map_of_touching_entries_in_descending_order() {
        let ram = crate::memory::tests::touching_pages_in_descending_order();
        let input = LayoutInput {
            ram: &ram,
            ..qemu(dyn_kernel(0x2c_0000, 0x1000))
        };
        check(
            "a memory map of 65 536 touching entries",
            input,
            Ok((Region::new(0x80_0000, 0xac_0000), qemu_mappings(0xc0_0000))),
        );
    }

    /// The invariants every accepted layout keeps, whatever the input.
    fn assert_layout_rules(input: &LayoutInput, layout: &Layout) {
        let kernel = layout.kernel;
        let top = align_up(kernel.end, HUGE_PAGE).unwrap();
        for pair in layout.mappings.windows(2) {
            assert!(
                pair[0].end <= pair[1].start,
                "mappings overlap or are unsorted: {pair:?}"
            );
        }
        for m in &layout.mappings {
            let size = m.page_size.bytes();
            assert!(
                m.start < m.end && m.start % size == 0 && m.end % size == 0,
                "{m:?}"
            );
            assert!(
                m.end <= top,
                "{m:?} reaches above the kernel's last 2 MiB page {top:#x}"
            );
            let range = Region::new(m.start, m.end);
            for (forbidden, name) in FORBIDDEN_LOW {
                assert!(!range.overlaps(&forbidden), "{m:?} maps {name}");
            }
            if m.start < ONE_MIB {
                assert!(
                    range.overlaps(&input.mbi) && m.page_size == PageSize::Size4K && !m.writable,
                    "{m:?}"
                );
            }
        }
        let covered = |r: &Region| {
            r.is_empty()
                || layout
                    .mappings
                    .iter()
                    .any(|m| Region::new(m.start, m.end).contains_range(r))
                || {
                    // A range may span the 4 KiB and the 2 MiB part.
                    let mut cursor = r.start;
                    for m in &layout.mappings {
                        if m.start <= cursor && cursor < m.end {
                            cursor = m.end;
                        }
                    }
                    cursor >= r.end
                }
        };
        for (r, what) in [
            (input.loader, "loader"),
            (input.mbi, "MBI"),
            (input.boot_data, "boot data"),
            (kernel, "kernel"),
        ] {
            assert!(
                covered(&r),
                "{what} {r:?} is not mapped by {:?}",
                layout.mappings
            );
        }
        for r in [input.loader, input.mbi, input.boot_data, input.module] {
            assert!(!kernel.overlaps(&r), "kernel {kernel:?} overlaps {r:?}");
        }
        for r in [input.loader, input.mbi, input.boot_data] {
            assert!(
                r.end <= align_down(kernel.start, HUGE_PAGE),
                "{r:?} is in the kernel's RAM"
            );
        }
        assert!(covered_entry_by_entry(input.ram, &kernel));
        if let KernelPlacement::Dyn { align, .. } = input.kernel {
            assert_eq!(kernel.start % align.max(HUGE_PAGE), 0);
            assert!(kernel.start >= KERNEL_MIN_BASE);
        }
    }

    #[test]
    fn accepted_layouts_keep_the_rules() {
        for kernel in [
            dyn_kernel(0x2c_0000, 0x1000),
            exec_kernel(0x80_0000, 0x93_4567),
        ] {
            let input = qemu(kernel);
            assert_layout_rules(&input, &plan_layout(&input).unwrap());
        }
    }

    fn input_parts(
    ) -> impl Strategy<Value = (Vec<Region>, Region, Region, Region, Region, KernelPlacement)> {
        let ram = prop_oneof![
            1 => prop::collection::vec(arbitrary_region(), 0..4),
            3 => (0x200_0000u64..1 << 33).prop_map(|top| vec![Region::new(0, 0x9_fc00), Region::new(0x10_0000, top)]),
        ];
        let loader = prop_oneof![
            3 => (0x1000u64..0x20_0000).prop_map(|len| Region::new(0x10_0000, 0x10_0000 + len)),
            1 => arbitrary_region(),
        ];
        let mbi = prop_oneof![3 => Just(Region::new(0x9000, 0xa000)), 1 => arbitrary_region()];
        // Offsets after the loader, as QEMU places the command line and the module.
        let after = (0u64..0x2000, 0u64..0x1000, 0u64..0x2000, 0u64..0x100_0000);
        let kernel = prop_oneof![
            2 => (0u64..0x400_0000, prop_oneof![Just(0u64), (0u32..40).prop_map(|s| 1u64 << s), any::<u64>()])
                .prop_map(|(size, align)| KernelPlacement::Dyn { size, align }),
            1 => (0u64..1 << 34, 0u64..0x400_0000)
                .prop_map(|(start, len)| KernelPlacement::Exec { start, end: start.saturating_add(len) }),
            1 => (any::<u64>(), any::<u64>()).prop_map(|(start, end)| KernelPlacement::Exec { start, end }),
        ];
        (ram, loader, mbi, after, kernel).prop_map(
            |(ram, loader, mbi, (gap, data_len, gap2, module_len), kernel)| {
                let data_start = loader.end.saturating_add(gap);
                let boot_data = Region::new(data_start, data_start.saturating_add(data_len));
                let module_start =
                    align_up(boot_data.end.saturating_add(gap2), PAGE).unwrap_or(u64::MAX);
                let module = Region::new(module_start, module_start.saturating_add(module_len));
                (ram, loader, mbi, boot_data, module, kernel)
            },
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1024))]

        /// Random inputs never panic the planner; every accepted layout keeps the
        /// rules and yields page tables that build with exactly the counted pages.
        #[test]
        fn random_layouts_plan_and_build((ram, loader, mbi, boot_data, module, kernel) in input_parts()) {
            let input = LayoutInput { ram: &ram, loader, loader_parts: &[], stack_guard: Region::new(0, 0), mbi, boot_data, module, kernel };
            if let Ok(layout) = plan_layout(&input) {
                assert_layout_rules(&input, &layout);
                let tables = crate::paging::count_tables(&layout.mappings);
                let mut arena: Vec<_> = (0..tables).map(|_| x86_64::structures::paging::PageTable::new()).collect();
                let arena_phys = align_down(loader.start, PAGE);
                let built = crate::paging::build_page_tables(&layout.mappings, &mut arena, arena_phys);
                if arena_phys <= (1 << 32) - PAGE {
                    let (pml4, stats) = built.unwrap();
                    prop_assert_eq!(pml4, arena_phys);
                    prop_assert_eq!(stats.tables, tables);
                    // Both ends of every mapping translate to themselves; the first
                    // address above the last mapping does not translate at all.
                    for m in &layout.mappings {
                        for virt in [m.start, m.end - 1] {
                            let got = translate(&arena, arena_phys, virt);
                            prop_assert_eq!(got.map(|(phys, size, _)| (phys, size)), Some((virt, m.page_size)));
                        }
                    }
                    let top = layout.mappings.last().map_or(0, |m| m.end);
                    prop_assert_eq!(translate(&arena, arena_phys, top), None);
                } else {
                    prop_assert!(built.is_err(), "a PML4 above 4 GiB must be refused");
                }
            }
        }

    }
}
