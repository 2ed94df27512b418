//! The `layout` target: layout planning with adversarial memory maps and regions,
//! and the page tables built for every layout it accepts.
//!
//! Input: the memory map (a count, the entries, and how often the last one repeats,
//! so that a short input can make a map of thousands of entries), then the loader
//! image, its parts, the MBI, the boot data, the module (each either QEMU's usual
//! place or any range) and the kernel's placement.

use rusty_loader::layout::{
    plan_layout, KernelPlacement, Layout, LayoutInput, LoaderPart, HUGE_PAGE, KERNEL_MIN_BASE,
    LOADER_REACH,
};
use rusty_loader::memory::Region;
use rusty_loader::paging::{self, PageSize, IDENTITY_LIMIT};
use x86_64::structures::paging::{PageTable, PageTableFlags};

use super::input::{Choices, Input};

/// How many table pages the loader binary's arena holds (`arch::memory`).
pub const ARENA_PAGES: usize = 64;

/// The places QEMU uses, which most inputs keep.
pub const LOADER: Region = Region::new(0x10_0000, 0x1f_0000);
pub const MBI: Region = Region::new(0x9000, 0x9500);
pub const BOOT_DATA: Region = Region::new(0x1f_0000, 0x1f_1000);
/// The guard page below the kernel stack (in [`PARTS`]), left unmapped.
pub const STACK_GUARD: Region = Region::new(0x1c_d000, 0x1c_e000);
/// The loader image's parts, as the loader binary lists them (sizes as in its
/// image, places inside [`LOADER`]).
pub const PARTS: [LoaderPart; 5] = [
    LoaderPart {
        name: "boot page tables",
        region: Region::new(0x14_0000, 0x14_6000),
    },
    LoaderPart {
        name: "loader stack",
        region: Region::new(0x14_6000, 0x14_e000),
    },
    LoaderPart {
        name: "loader heap",
        region: Region::new(0x14_e000, 0x18_e000),
    },
    LoaderPart {
        name: "page-table arena",
        region: Region::new(0x18_e000, 0x1c_e000),
    },
    LoaderPart {
        name: "kernel stack",
        region: Region::new(0x1c_e000, 0x1d_6000),
    },
];

/// A region: `default` most of the time, else any range (sometimes inverted).
fn region(input: &mut Input, default: Region) -> Region {
    match input.u8() % 4 {
        0 | 1 => default,
        2 => {
            let start = input.address();
            Region::new(start, start.saturating_add(input.address()))
        }
        _ => Region::new(input.address(), input.address()),
    }
}

/// Everything a layout is planned from, owned.
pub struct Plan {
    pub ram: Vec<Region>,
    pub loader: Region,
    pub parts: Vec<LoaderPart>,
    pub stack_guard: Region,
    pub mbi: Region,
    pub boot_data: Region,
    pub module: Region,
    pub kernel: KernelPlacement,
}

impl Plan {
    pub fn read(input: &mut Input) -> Plan {
        let entries = usize::from(input.u8());
        let mut ram: Vec<Region> = (0..entries)
            .map(|_| region(input, Region::new(0x10_0000, 0x800_0000)))
            .collect();
        let repeats = usize::from(input.u16());
        if let Some(&last) = ram.last() {
            ram.extend(std::iter::repeat_n(last, repeats));
        }
        let loader = region(input, LOADER);
        let parts = if input.u8().is_multiple_of(4) {
            (0..input.below(6))
                .map(|_| LoaderPart {
                    name: "part",
                    region: region(input, PARTS[0].region),
                })
                .collect()
        } else {
            PARTS.to_vec()
        };
        let mbi = region(input, MBI);
        let boot_data = region(input, BOOT_DATA);
        let module = region(input, Region::new(0x1f_1000, 0x30_0000));
        let kernel = if input.bool() {
            KernelPlacement::Dyn {
                size: input.address(),
                align: match input.u8() % 4 {
                    0 => input.u64(),
                    1 => 0x1000,
                    2 => HUGE_PAGE,
                    _ => 0x4000_0000,
                },
            }
        } else {
            KernelPlacement::Exec {
                start: input.address(),
                end: input.address(),
            }
        };
        // Read last, so that inputs made before there was a guard (the regression
        // corpus) still mean what they meant: an exhausted input reads 0, no guard.
        let stack_guard = match input.u8() % 4 {
            0 => Region::new(0, 0),
            1 => region(input, STACK_GUARD),
            _ => STACK_GUARD,
        };
        Plan {
            ram,
            loader,
            parts,
            stack_guard,
            mbi,
            boot_data,
            module,
            kernel,
        }
    }

    pub fn input(&self) -> LayoutInput<'_> {
        LayoutInput {
            ram: &self.ram,
            loader: self.loader,
            loader_parts: &self.parts,
            stack_guard: self.stack_guard,
            mbi: self.mbi,
            boot_data: self.boot_data,
            module: self.module,
            kernel: self.kernel,
        }
    }
}

/// Runs every check on one input; panics on the first that fails.
pub fn check(data: &[u8]) {
    let plan = Plan::read(&mut Input::new(data));
    if let Ok(layout) = plan_layout(&plan.input()) {
        check_layout(&plan.input(), &layout);
        let mut arena = vec![PageTable::new(); ARENA_PAGES];
        // The arena lies in the loader image, where the real one is.
        let arena_phys = plan.loader.start.next_multiple_of(0x1000);
        if let Ok(tables) = layout.build_page_tables(&mut arena, arena_phys) {
            check_tables(&plan.input(), &layout, &arena, arena_phys, tables.pml4());
        }
    }
}

/// Whether `[start, end)` lies in the union of the non-empty `ram` ranges (touching
/// ones count as one), by a walk over them sorted.
fn in_ram(ram: &[Region], region: &Region) -> bool {
    if region.is_empty() {
        return true;
    }
    let mut sorted: Vec<&Region> = ram.iter().filter(|r| r.start < r.end).collect();
    sorted.sort_by_key(|r| r.start);
    let mut reached = region.start;
    for r in sorted {
        if r.start > reached {
            break;
        }
        reached = reached.max(r.end);
    }
    reached >= region.end
}

fn overlaps(a: &Region, b: &Region) -> bool {
    a.start < b.end && b.start < a.end
}

/// What an accepted layout promises (docs/ARCHITECTURE.md, "One layout serves every
/// kernel generation").
pub fn check_layout(input: &LayoutInput, layout: &Layout) {
    let kernel = layout.kernel();
    assert!(kernel.start < kernel.end, "{kernel:?}");
    match input.kernel {
        KernelPlacement::Dyn { size, align } => {
            assert_eq!(kernel.len(), size);
            assert_eq!(kernel.start % align.max(HUGE_PAGE), 0, "{kernel:?}");
            assert!(kernel.start >= KERNEL_MIN_BASE, "{kernel:?}");
        }
        KernelPlacement::Exec { start, end } => assert_eq!(kernel, Region::new(start, end)),
    }
    assert!(kernel.end <= LOADER_REACH, "{kernel:?}");
    assert!(in_ram(input.ram, &kernel), "{kernel:?} is not in RAM");
    let kept = [input.loader, input.mbi, input.boot_data];
    let owned_from = kernel.start - kernel.start % HUGE_PAGE;
    for region in kept {
        assert!(in_ram(input.ram, &region), "{region:?} is not in RAM");
        assert!(
            region.is_empty() || region.end <= owned_from,
            "{region:?} is in the kernel's 2 MiB pages or above: {kernel:?}"
        );
    }
    for region in kept.iter().chain([&input.module]) {
        assert!(!overlaps(&kernel, region), "{kernel:?} overlaps {region:?}");
    }
    for part in input.loader_parts {
        assert!(input.loader.contains_range(&part.region), "{part:?}");
    }

    let mappings = layout.mappings();
    let top = kernel.end.next_multiple_of(HUGE_PAGE);
    for m in mappings {
        let page = m.page_size.bytes();
        assert!(
            m.start < m.end && m.start % page == 0 && m.end % page == 0,
            "{m:?}"
        );
        assert!(
            m.end <= top,
            "{m:?} is above the kernel's end rounded to 2 MiB"
        );
        // Nothing in page 0, at the SMP trampoline or in the EBDA and BIOS areas.
        for forbidden in [(0, 0x1000), (0x8000, 0x9000), (0x8_0000, 0x10_0000)] {
            assert!(
                !overlaps(
                    &Region::new(m.start, m.end),
                    &Region::new(forbidden.0, forbidden.1)
                ),
                "{m:?}"
            );
        }
    }
    for pair in mappings.windows(2) {
        assert!(pair[0].end <= pair[1].start, "{pair:?}");
    }
    let mapped_ranges: Vec<Region> = mappings
        .iter()
        .map(|m| Region::new(m.start, m.end))
        .collect();
    let mapped = |r: &Region| in_ram(&mapped_ranges, r);
    // The loader image is mapped but for the stack guard, which nothing maps.
    let guard = input.stack_guard;
    let loader_parts = if guard.is_empty() {
        vec![input.loader]
    } else {
        for m in mappings {
            assert!(
                !overlaps(&Region::new(m.start, m.end), &guard),
                "{m:?} maps the stack guard {guard:?}"
            );
        }
        vec![
            Region::new(input.loader.start, guard.start),
            Region::new(guard.end, input.loader.end),
        ]
    };
    for region in loader_parts
        .into_iter()
        .chain([input.mbi, input.boot_data, kernel])
    {
        assert!(mapped(&region), "{region:?} is not mapped by {mappings:?}");
    }
    // The module is mapped where it lies between the loader and the kernel; the
    // kernel never reads it.
    let module = input.module;
    if input.loader.start <= module.start && module.end <= kernel.end {
        assert!(mapped(&module), "{module:?} is not mapped by {mappings:?}");
    }
}

/// What the tables built for an accepted layout map: every mapping identically,
/// with its page size, and nothing in page 0 or above the kernel's last 2 MiB page.
pub fn check_tables(
    input: &LayoutInput,
    layout: &Layout,
    arena: &[PageTable],
    arena_phys: u64,
    pml4: u64,
) {
    assert_eq!(pml4, arena_phys);
    let translate = |virt: u64| paging::translate(arena, arena_phys, virt);
    for m in layout.mappings() {
        for address in [m.start, m.end - 1] {
            let (phys, size, flags) =
                translate(address).unwrap_or_else(|| panic!("{address:#x} of {m:?} unmapped"));
            assert_eq!(phys, address, "{m:?} is not an identity mapping");
            assert_eq!(size, m.page_size, "{m:?}");
            assert_eq!(
                flags.contains(PageTableFlags::WRITABLE),
                m.writable,
                "{m:?}"
            );
        }
    }
    let kernel = layout.kernel();
    for address in [kernel.start, kernel.end - 1] {
        let (phys, _, flags) = translate(address).expect("the kernel is mapped");
        assert_eq!(phys, address);
        assert!(flags.contains(PageTableFlags::WRITABLE));
    }
    if let Some((_, size, _)) = translate(input.loader.start) {
        assert_eq!(size, PageSize::Size4K, "the loader's pages are 4 KiB");
    }
    assert_eq!(translate(0), None, "page 0 is mapped");
    let guard = input.stack_guard;
    if !guard.is_empty() {
        for address in [guard.start, guard.end - 1] {
            assert_eq!(
                translate(address),
                None,
                "{address:#x} of the stack guard is mapped"
            );
        }
    }
    let top = kernel.end.next_multiple_of(HUGE_PAGE);
    if top < IDENTITY_LIMIT {
        assert_eq!(
            translate(top),
            None,
            "{top:#x}, above the kernel, is mapped"
        );
    }
    // The recursive entry: the PML4 maps itself at the top of the address space.
    let (phys, _, _) = translate(0xffff_ffff_ffff_f000).expect("the recursive entry");
    assert_eq!(phys, arena_phys);
    assert!(paging::count_tables(layout.mappings()) <= ARENA_PAGES);
}

/// Writes the choices that make `region` read as `region` (any range).
fn any_region(choices: &mut Choices, region: Region) {
    choices.u8(3).address(region.start).address(region.end);
}

/// Seed inputs: QEMU's usual layout for both kinds of kernel, and a map with many
/// entries.
pub fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let qemu_map = |choices: &mut Choices, repeats: u16| {
        choices.u8(2);
        any_region(choices, Region::new(0, 0x9fc00));
        any_region(choices, Region::new(0x10_0000, 0x400_0000));
        choices.u16(repeats);
        // Loader, parts, MBI, boot data, module: QEMU's places.
        choices.u8(0).u8(1).u8(0).u8(0).u8(0);
    };
    let mut dyn_kernel = Choices::default();
    qemu_map(&mut dyn_kernel, 0);
    dyn_kernel.u8(1).address(0x2_3000).u8(2);
    let mut exec_kernel = Choices::default();
    qemu_map(&mut exec_kernel, 0);
    exec_kernel.u8(0).address(0x80_0000).address(0x82_3000);
    let mut repeated = Choices::default();
    qemu_map(&mut repeated, 4000);
    repeated.u8(1).address(0x2_3000).u8(1);
    vec![
        ("qemu-dyn", dyn_kernel.bytes),
        ("qemu-exec", exec_kernel.bytes),
        ("repeated-entries", repeated.bytes),
    ]
}
