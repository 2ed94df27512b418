//! The `loading` target: the whole host-side loading path, in the order of the
//! loader's `boot()` (loader/src/boot.rs), on an arbitrary module: inspect the ELF,
//! plan the layout, copy and zero the segments into a buffer, zero the gaps,
//! relocate, read the TLS template, build the device tree and the boot info, and
//! build the hand-over page tables into a host arena. Every refusal is fine; what
//! an accepted kernel gets is checked.
//!
//! Input: the module (the application's ELF file), booted on QEMU's usual machine
//! (64 MiB, the loader at 1 MiB, the module after its boot data).

use rusty_loader::bootinfo::{raw_boot_info, raw_boot_info_v2, BootInfoInput, BootInfoLayout};
use rusty_loader::elf::{self, ElfKind, Kernel, MAX_PROGRAM_HEADERS};
use rusty_loader::fdt;
use rusty_loader::layout::{plan_layout, LayoutInput};
use rusty_loader::memory::Region;
use x86_64::structures::paging::PageTable;

use super::fdt_reader;
use super::layout::{
    self as layout_checks, ARENA_PAGES, BOOT_DATA, LOADER, MBI, PARTS, STACK_GUARD,
};

/// QEMU's memory map for `-m 64M`, usable parts.
pub const RAM: [Region; 2] = [Region::new(0, 0x9fc00), Region::new(0x10_0000, 0x400_0000)];
/// Where QEMU puts the module: after the boot data.
const MODULE_START: u64 = 0x1f_1000;
/// The command line the boot info points to (the loader's points into QEMU's buffer).
const COMMAND_LINE: &str = "/x/rusty-loader -freq 2800 -- app";
const TSC_KHZ: u32 = 2_800_000;
/// Where the device tree would lie (inside the loader image, as on the loader heap).
const FDT_ADDRESS: u64 = 0x15_0000;

/// How far an input got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reached {
    /// `elf::inspect` refused it.
    Inspection,
    /// The layout planning refused it.
    Layout,
    /// Loading or relocating refused it.
    Loading,
    /// Everything was built: the loader would hand over.
    HandOver,
}

/// Runs every check on one module; panics on the first that fails.
pub fn check(module: &[u8]) -> Reached {
    let Ok(kernel) = elf::inspect(module) else {
        return Reached::Inspection;
    };
    check_kernel(&kernel, module);

    let placement = kernel.placement();
    let module_end = MODULE_START + (module.len() as u64).next_multiple_of(0x1000);
    let input = LayoutInput {
        ram: &RAM,
        loader: LOADER,
        loader_parts: &PARTS,
        stack_guard: STACK_GUARD,
        mbi: MBI,
        boot_data: BOOT_DATA,
        module: Region::new(MODULE_START, module_end),
        kernel: placement,
    };
    let Ok(layout) = plan_layout(&input) else {
        return Reached::Layout;
    };
    layout_checks::check_layout(&input, &layout);
    let place = layout.kernel();
    assert_eq!(place.len(), kernel.size());
    let bias = kernel.bias(place.start);
    let entry = kernel.entry_point(bias);
    assert!(
        place.start <= entry && entry < place.end,
        "entry {entry:#x} outside {place:?}"
    );

    // The image starts poisoned: whatever loading leaves undefined shows.
    let mut image = vec![0xa5u8; usize::try_from(place.len()).unwrap()];
    let mut ticks = 0u64;
    for segment in &kernel.segments {
        let loaded = kernel.load_segment_timed(segment, &mut image, || {
            ticks += 1;
            ticks
        });
        if loaded.is_err() {
            return Reached::Loading;
        }
    }
    kernel.zero_gaps(&mut image);
    // Every byte is file data or zero.
    let expected = expected_image(&kernel, module, image.len());
    if let Some(at) = differing(&image, &expected).next() {
        panic!(
            "image byte {at:#x} is {:#04x}, the file says {:#04x}",
            image[at], expected[at]
        );
    }
    let Ok(relocations) = kernel.relocate(bias, &mut image) else {
        return Reached::Loading;
    };
    // Each relocation writes one 8-byte word: the bytes that changed fit in as many.
    let applied = u64::from(relocations.relative)
        + u64::from(relocations.abs64)
        + u64::from(relocations.glob_dat);
    let mut words = 0u64;
    let mut covered_to = 0usize;
    for at in differing(&image, &expected) {
        if at >= covered_to {
            words += 1;
            covered_to = at + 8;
        }
    }
    assert!(
        words <= applied,
        "{words} words changed by {applied} relocations"
    );
    if kernel.kind == ElfKind::Exec {
        assert_eq!(applied, 0, "an executable is not relocated");
    }

    let tls = kernel.tls_info(bias);
    if let Some(tls) = &tls {
        let template_end = tls
            .start
            .checked_add(tls.filesz)
            .expect("the template ends");
        assert!(
            place.start <= tls.start && template_end <= place.end,
            "TLS template {tls:?} outside {place:?}"
        );
        assert!(tls.filesz <= tls.memsz);
    }

    let boot_info_layout = BootInfoLayout::for_entry_version(kernel.entry_version);
    let device_tree = match boot_info_layout {
        BootInfoLayout::WithDeviceTree => {
            let blob = fdt::build_fdt(&RAM, COMMAND_LINE, Some(TSC_KHZ), None).expect("the FDT");
            fdt_reader::properties(&blob).unwrap_or_else(|e| panic!("FDT: {e}"));
            FDT_ADDRESS
        }
        BootInfoLayout::WithoutDeviceTree => 0,
    };
    let boot_info = BootInfoInput {
        kernel_image: place,
        tls,
        device_tree,
        command_line: Some(COMMAND_LINE),
        mbi_addr: MBI.start,
    };
    match boot_info_layout {
        BootInfoLayout::WithoutDeviceTree => {
            let raw = raw_boot_info_v2(&boot_info).expect("the boot info");
            assert_eq!(
                (raw.kernel_image_addr_start, raw.kernel_image_addr_end),
                (place.start, place.end)
            );
        }
        BootInfoLayout::WithDeviceTree => {
            raw_boot_info(&boot_info).expect("the boot info");
        }
    }

    let mut arena = vec![PageTable::new(); ARENA_PAGES];
    let arena_phys = PARTS[3].region.start;
    let tables = layout
        .build_page_tables(&mut arena, arena_phys)
        .expect("page tables for an accepted layout");
    layout_checks::check_tables(&input, &layout, &arena, arena_phys, tables.pml4());
    Reached::HandOver
}

/// What an accepted kernel promises: segments in address order, apart, inside the
/// image and the file, the entry point and the TLS template inside the image.
fn check_kernel(kernel: &Kernel, module: &[u8]) {
    assert!(kernel.segments.len() <= usize::from(MAX_PROGRAM_HEADERS));
    assert!(!kernel.segments.is_empty());
    assert_eq!(kernel.vaddr_start % 0x1000, 0);
    assert_eq!(kernel.vaddr_end % 0x1000, 0);
    assert!(kernel.vaddr_start < kernel.vaddr_end);
    assert!(
        kernel.align.is_power_of_two() && kernel.align >= 0x1000,
        "{kernel:?}"
    );
    assert!(
        (kernel.vaddr_start..kernel.vaddr_end).contains(&kernel.entry),
        "{kernel:?}"
    );
    let mut previous_end = kernel.vaddr_start;
    for segment in &kernel.segments {
        assert!(segment.file_size <= segment.mem_size, "{segment:?}");
        let end = segment
            .vaddr
            .checked_add(segment.mem_size)
            .expect("segment end");
        assert!(
            segment.vaddr >= previous_end,
            "{segment:?} overlaps the one before"
        );
        assert!(end <= kernel.vaddr_end, "{segment:?} beyond {kernel:?}");
        previous_end = end;
        let file_end = segment.file_offset.checked_add(segment.file_size);
        assert!(
            file_end.is_some_and(|end| end <= module.len() as u64),
            "{segment:?} outside the file"
        );
    }
    if let Some(tls) = kernel.tls {
        assert!(tls.vaddr >= kernel.vaddr_start);
        assert!(tls.vaddr.saturating_add(tls.file_size) <= kernel.vaddr_end);
    }
}

/// The offsets where `a` and `b` differ. Blocks are compared whole first (a
/// `memcmp`): an image of tens of MiB is compared byte by byte only where it
/// differs, which keeps this check from being the slow part of an input.
fn differing<'a>(a: &'a [u8], b: &'a [u8]) -> impl Iterator<Item = usize> + 'a {
    const BLOCK: usize = 4096;
    a.chunks(BLOCK)
        .zip(b.chunks(BLOCK))
        .enumerate()
        .filter(|(_, (x, y))| x != y)
        .flat_map(|(block, (x, y))| {
            (0..x.len())
                .filter(move |&i| x[i] != y[i])
                .map(move |i| block * BLOCK + i)
        })
}

/// The image as loading must leave it: each segment's file bytes at its place,
/// zeros everywhere else.
fn expected_image(kernel: &Kernel, module: &[u8], len: usize) -> Vec<u8> {
    let mut expected = vec![0u8; len];
    for segment in &kernel.segments {
        let at = (segment.vaddr - kernel.vaddr_start) as usize;
        let file = &module[segment.file_offset as usize..][..segment.file_size as usize];
        expected[at..at + file.len()].copy_from_slice(file);
    }
    expected
}
